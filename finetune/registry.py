"""Sharing fine-tunes: one registry interface, two back ends.

- LocalRegistry: a folder laid out like the Hub (`ROOT/owner/name/` holding a repo's files),
  the default: no account, works offline, and is what the app's Community tab reads when no
  Hub is configured. ROOT is $POCKETWORLD_REGISTRY or ~/.cache/pocketworld/registry.
- HubRegistry: the Hugging Face Hub through huggingface_hub's HfApi (create_repo, upload_folder,
  list_models filtered by our library tag, model_info) and snapshot_download. The endpoint is
  $HF_ENDPOINT (read when the registry is made, so tests and mirrors can point it elsewhere).

Tokens come from huggingface_hub (HF_TOKEN or `huggingface-cli login`); this module never
writes, prints or logs one. Pushing never changes the local adapter folder: what is uploaded is
checked first (an adapter config that parses, safetensors only, a model card whose metadata
the registry can list), and a card generated for a folder without one goes into a staged copy.
Pulled repos are checked the same way before they are handed over.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import staged_folder
from finetune.cards import LIBRARY, CardError, check_card, finetune_card, rerender_card
from finetune.lora import read_adapter_config

LOCAL_OWNER = "local"  # the namespace of a repo pushed to the local registry without one
PUSHED = ("*.json", "*.safetensors", "*.md", "*.gif", "*.png")  # what a repo may hold; never pickles
STALE_STAGE_S = 3600  # a push stages its copy in seconds: a staging folder this old was left by a killed one


class RegistryError(ValueError):
    """A registry operation that cannot be done as asked (the message says why and what to do)."""


class RepoTakenError(RegistryError):
    """A push to a repo name that already exists."""


class AuthError(RegistryError):
    """A Hub operation that needs a token, with none available or one the Hub rejected."""


@dataclass
class ModelEntry:
    repo: str  # "owner/name"
    location: str  # a URL or a local folder
    base_model: str | None  # the model the adapter loads onto (from the card)
    game: str | None  # the game it learned (from the card)
    tags: list[str] = field(default_factory=list)
    card: dict = field(default_factory=dict)  # the card's whole YAML metadata

    @classmethod
    def from_card_data(cls, repo: str, location: str, data: dict, tags=None) -> ModelEntry:
        extra = data.get("pocketworld") if isinstance(data.get("pocketworld"), dict) else {}
        base = data.get("base_model")
        return cls(
            repo,
            location,
            base if isinstance(base, str) else None,
            extra.get("game"),
            list(tags if tags is not None else data.get("tags") or []),
            data,
        )

    def to_dict(self) -> dict:
        return {
            "repo": self.repo,
            "location": self.location,
            "base_model": self.base_model,
            "game": self.game,
            "tags": self.tags,
        }


def _check_repo_name(repo: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as err:
        raise RegistryError(f"invalid repo name {repo!r}: {err}") from None


def _staged_upload(folder: Path, repo: str, game: str | None, stage: Path) -> Path:
    """Check `folder` is a shareable adapter; copy what is pushed into `stage`, adding a card if it has none."""
    config = read_adapter_config(folder)
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith(".") and any(path.match(p) for p in PUSHED):
            shutil.copy2(path, stage / path.name)
    card = stage / "README.md"
    if card.exists():
        try:
            card.write_text(rerender_card(card.read_text(encoding="utf-8"), repo), encoding="utf-8")
        except CardError as err:
            raise RegistryError(
                f"{folder / 'README.md'}: {err}; fix the card or delete it and push with --game"
            ) from None
    elif game is None:
        raise RegistryError(
            f"{folder} has no README.md model card; pass --game NAME to write one, so that others "
            "can find the fine-tune by its game and base model"
        )
    else:
        card.write_text(
            finetune_card(
                repo,
                config["base_model_name_or_path"],
                game,
                config["r"],
                config["lora_alpha"],
                config["target_modules"],
            ),
            encoding="utf-8",
        )
    return stage


def _check_pulled(folder: Path, repo: str) -> None:
    read_adapter_config(folder)
    if (folder / "README.md").exists():
        check_card((folder / "README.md").read_text(encoding="utf-8"), finetune=True)
    else:
        raise RegistryError(f"{repo} has no model card (README.md); it is not a PocketWorld fine-tune")


def _hidden(path: Path) -> bool:
    """A dot-named owner or repo folder: a push's staging copy (`.name.*.partial`) or a swapped-out
    old version, never a repo (validate_repo_id refuses names that start with a dot)."""
    return path.name.startswith(".") or path.parent.name.startswith(".")


def _remove_stale_stages(owner: Path, now: float | None = None) -> None:
    """Delete the staging folders killed pushes left in `owner`. Only real folders with the staging
    name and untouched for STALE_STAGE_S: a push still copying keeps its own."""
    if not owner.is_dir():
        return
    now = time.time() if now is None else now
    for stage in owner.glob(".*.partial"):
        if stage.is_dir() and not stage.is_symlink() and now - stage.lstat().st_mtime > STALE_STAGE_S:
            shutil.rmtree(stage, ignore_errors=True)


def _new_dest(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} already exists and is not empty; pull into a new folder")


class LocalRegistry:
    """Repos as folders: ROOT/owner/name/ with the same files a Hub repo would hold."""

    def __init__(self, root: str | Path | None = None):
        default = os.environ.get("POCKETWORLD_REGISTRY") or Path.home() / ".cache" / "pocketworld" / "registry"
        self.root = Path(root or default)

    def _path(self, repo: str) -> Path:
        _check_repo_name(repo)
        if "/" not in repo:
            raise RegistryError(
                f"repo {repo!r} needs an owner: 'owner/{repo}' (pushes without one use '{LOCAL_OWNER}/')"
            )
        return self.root / repo  # validate_repo_id allows no '..', slashes beyond one, or absolute paths

    def push(self, folder: str | Path, repo: str, *, game: str | None = None, update: bool = False) -> str:
        repo = repo if "/" in repo else f"{LOCAL_OWNER}/{repo}"
        target = self._path(repo)
        if target.exists() and not update:
            raise RepoTakenError(
                f"{repo} already exists in the local registry {self.root}; choose another --repo "
                "or pass --update to replace it"
            )
        _remove_stale_stages(target.parent)
        with staged_folder(target, replace=True) as stage:  # --update swaps only once the new files are whole
            _staged_upload(Path(folder), repo, game, stage)
        return str(target)

    def list(self, search: str | None = None) -> list[ModelEntry]:
        entries = []
        for card in sorted(self.root.glob("*/*/README.md")):
            if _hidden(card.parent):
                continue
            repo = f"{card.parent.parent.name}/{card.parent.name}"
            if search and search.lower() not in repo.lower():
                continue
            try:
                data = check_card(card.read_text(encoding="utf-8"), finetune=True).data.to_dict()
            except CardError:
                continue  # not a PocketWorld fine-tune: the Hub's library filter would skip it too
            entries.append(ModelEntry.from_card_data(repo, str(card.parent), data))
        return entries

    def info(self, repo: str) -> ModelEntry:
        path = self._path(repo)
        if not (path / "README.md").is_file():
            raise RegistryError(f"{repo} is not in the local registry {self.root}")
        data = check_card((path / "README.md").read_text(encoding="utf-8"), finetune=True).data.to_dict()
        return ModelEntry.from_card_data(repo, str(path), data)

    def pull(self, repo: str, dest: str | Path | None = None) -> Path:
        """The repo's folder (checked); with `dest`, a copy of it there."""
        path = self._path(repo)
        if not path.is_dir():
            raise RegistryError(f"{repo} is not in the local registry {self.root}")
        _check_pulled(path, repo)
        if dest is None:
            return path
        dest = Path(dest)
        _new_dest(dest)
        if dest.exists():
            dest.rmdir()
        shutil.copytree(path, dest)
        return dest


class HubRegistry:
    """The Hugging Face Hub (or any server speaking its API, e.g. a mirror or our test fixture)."""

    def __init__(self, endpoint: str | None = None, token: str | None = None):
        from huggingface_hub import HfApi, constants

        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        self._token = token  # None: huggingface_hub's own (HF_TOKEN, or the one `huggingface-cli login` stored)
        self.api = HfApi(endpoint=self.endpoint)

    def _write_token(self) -> str:
        from huggingface_hub import get_token

        token = self._token or get_token()
        if not token:
            raise AuthError(
                "pushing to the Hub needs a Hugging Face token: run `huggingface-cli login` or set "
                "HF_TOKEN (a token with write access); nothing was uploaded"
            )
        return token

    def _call(self, what: str, repo: str | None, call):
        """Run a Hub call, turning its HTTP errors into RegistryErrors that say what to do."""
        import httpx  # huggingface_hub's HTTP client
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        try:
            return call()
        except RepositoryNotFoundError:
            raise RegistryError(
                f"{repo} was not found on {self.endpoint} (or it is private and your token cannot read it)"
            ) from None
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            if status == 401:
                raise AuthError(
                    f"{what}: the Hub rejected the token (401); run `huggingface-cli login` again"
                ) from None
            if status == 403:
                raise AuthError(f"{what}: your token may not write to {repo} (403); push under your own name") from None
            if status == 409:
                raise RepoTakenError(
                    f"{repo} already exists on {self.endpoint}; choose another --repo, or pass "
                    "--update to push a new revision to your own repo"
                ) from None
            raise RegistryError(f"{what} failed ({status}): {err}") from None
        except (httpx.TransportError, OSError) as err:  # connection refused, DNS, timeouts
            raise RegistryError(f"{what}: cannot reach {self.endpoint}: {err}") from None

    def push(
        self, folder: str | Path, repo: str, *, game: str | None = None, update: bool = False, private: bool = False
    ) -> str:
        folder = Path(folder)
        read_adapter_config(folder)  # before asking for a token: a broken adapter fails the same way offline
        token = self._write_token()
        if "/" not in repo:
            repo = f"{self._call('who am I', None, lambda: self.api.whoami(token=token))['name']}/{repo}"
        _check_repo_name(repo)
        with tempfile.TemporaryDirectory(prefix="pocketworld-push-") as stage:
            _staged_upload(folder, repo, game, Path(stage))
            self._call(
                "create repo", repo, lambda: self.api.create_repo(repo, token=token, private=private, exist_ok=update)
            )
            self._call(
                "upload",
                repo,
                lambda: self.api.upload_folder(
                    repo_id=repo,
                    folder_path=stage,
                    token=token,
                    allow_patterns=list(PUSHED),
                    commit_message="Upload PocketWorld fine-tune",
                ),
            )
        return f"{self.endpoint}/{repo}"

    def list(self, search: str | None = None, limit: int = 100) -> list[ModelEntry]:
        models = self._call(
            "list models",
            None,
            lambda: list(
                self.api.list_models(filter=LIBRARY, search=search, cardData=True, limit=limit, token=self._token)
            ),
        )
        return [
            ModelEntry.from_card_data(m.id, f"{self.endpoint}/{m.id}", _card_dict(m.card_data), m.tags) for m in models
        ]

    def info(self, repo: str) -> ModelEntry:
        _check_repo_name(repo)
        model = self._call("model info", repo, lambda: self.api.model_info(repo, token=self._token))
        return ModelEntry.from_card_data(
            model.id, f"{self.endpoint}/{model.id}", _card_dict(model.card_data), model.tags
        )

    def pull(self, repo: str, dest: str | Path | None = None) -> Path:
        """Download the repo (only the file kinds an adapter has; never pickles) and check it.
        Without `dest` it lands in the huggingface_hub cache; with one, there, all or nothing."""
        from huggingface_hub import snapshot_download

        _check_repo_name(repo)
        download = dict(repo_id=repo, endpoint=self.endpoint, token=self._token, allow_patterns=list(PUSHED))
        if dest is None:
            path = Path(self._call("download", repo, lambda: snapshot_download(**download)))
            _check_pulled(path, repo)
            return path
        dest = Path(dest)
        _new_dest(dest)
        with staged_folder(dest) as stage:
            self._call("download", repo, lambda: snapshot_download(local_dir=stage, **download))
            shutil.rmtree(stage / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping for local_dir
            _check_pulled(stage, repo)
        return dest


def _card_dict(card_data) -> dict:
    if card_data is None:
        return {}
    return card_data if isinstance(card_data, dict) else card_data.to_dict()


def make_registry(kind: str = "local", **options):
    """The registry called `kind` ("local" or "hub")."""
    if kind == "local":
        return LocalRegistry(**options)
    if kind == "hub":
        return HubRegistry(**options)
    raise RegistryError(f"unknown registry {kind!r}; choose 'local' (a folder, no account) or 'hub' (Hugging Face)")
