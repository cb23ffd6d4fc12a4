"""Tiles and sprites for the games: a procedural palette per level, or a user's tileset.

Every game draws its level from named 16x16 tiles ("ground", "coin", ...) and named 16x16
RGBA sprites ("player", "enemy", ...). By default the shapes below are coloured with a palette
drawn from the level seed, so held-out seeds also look new. A tileset (a PNG sprite sheet plus
a JSON naming cells in it, the way OpenGameArt sheets are laid out) replaces them, so data can
be made in a game's own art style. `core/games/assets/pocket_tiles.json` is the example.

Tileset JSON:
    {"image": "sheet.png",            # relative to the JSON file
     "tile_size": 16,                 # or [w, h]; cells are rescaled to 16x16 (nearest)
     "transparent": [255, 0, 255],    # optional colour key for sheets without alpha
     "tiles":   {"ground": [col, row], ...},   # opaque cells
     "sprites": {"player": [col, row], ...}}   # cells with transparency
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TILE = 16  # tile and sprite size in pixels

_BLOCK = ("++++++++", "+######o", "+#+####o", "+######o", "+######o", "+######o", "+######o", "oooooooo")

# 8x8 shapes drawn at 2x. '.' is background (tiles) or transparent (sprites),
# '#' the main colour, 'o' a dark detail, '+' a light detail.
SHAPES: dict[str, tuple[str, ...]] = {
    # backgrounds
    "sky": ("........", "........", "........", "........", "........", "........", "........", "........"),
    "floor": ("........", "........", "...o....", "........", "........", "......o.", "........", "........"),
    "space": ("........", "........", "........", "........", "........", "........", "........", "........"),
    "star": ("........", "........", "......+.", "........", "..+.....", "........", "........", "........"),
    # solids
    "ground": ("++++++++", "########", "#o######", "######o#", "########", "###o####", "########", "oooooooo"),
    "brick": ("+++o+++o", "###o###o", "oooooooo", "o###o###", "o###o###", "oooooooo", "###o###o", "oooooooo"),
    "wall": ("+++++++o", "+######o", "+######o", "+######o", "+######o", "+######o", "+######o", "oooooooo"),
    "door": ("oooooooo", "o######o", "o######o", "o####+#o", "o######o", "o######o", "o######o", "oooooooo"),
    # pickups and goals (drawn over the level's background)
    "coin": ("........", "...##...", "..#++#..", "..#+##..", "..#+##..", "..####..", "...##...", "........"),
    "gem": ("........", "...+#...", "..+###..", ".+#####.", "..###o..", "...#o...", "........", "........"),
    "key": ("........", ".##.....", "#..#####", "#..#.#.#", ".##.....", "........", "........", "........"),
    "flag": (".o####..", ".o#####.", ".o####..", ".o......", ".o......", ".o......", ".o......", "oooo...."),
    "exit": ("oooooooo", "o++++++o", "o+####+o", "o+#oo#+o", "o+#oo#+o", "o+####+o", "o++++++o", "oooooooo"),
    # sprites
    "player": ("..####..", ".######.", ".#+#+##.", ".######.", "..####..", ".######.", ".#.##.#.", "..#..#.."),
    "enemy": ("........", "..####..", ".######.", "#+o##+o#", "########", "########", ".#.##.#.", "#......#"),
    "slash": ("...++...", "..+##+..", ".+#..#+.", "+#....#+", "+#....#+", ".+#..#+.", "..+##+..", "...++..."),
    "ship": ("...##...", "...##...", "..#++#..", "..####..", ".######.", "##o##o##", "########", "#.#..#.#"),
    "alien": ("..#..#..", "...##...", "..####..", ".#o##o#.", "########", "#.####.#", "#.#..#.#", "...##..."),
    "bullet": ("........", "...++...", "...##...", "...##...", "...##...", "........", "........", "........"),
    "enemy_bullet": ("........", "........", "...o#...", "...##...", "...#o...", "........", "........", "........"),
    "life": ("........", "...#....", "..###...", ".#####..", "#######.", "##.#.##.", "........", "........"),
    # bricks: three kinds of breakable block (one shape), the two halves of a 28 px paddle (they meet at their
    # inner edges) and the ball; a free cell column at each end leaves room for a tileset's outline
    "block_low": _BLOCK,
    "block_mid": _BLOCK,
    "block_top": _BLOCK,
    "paddle_left": ("........", "..++++++", ".+######", ".#######", "..oooooo", "........", "........", "........"),
    "paddle_right": ("........", "++++++..", "#######.", "######o.", "oooooo..", "........", "........", "........"),
    "ball": ("........", "..ooo...", ".o++#o..", ".o+##o..", ".o###o..", "..ooo...", "........", "........"),
}


@dataclass
class Art:
    """One level's look: tiles (T, 16, 16, 3) and sprites (S, 16, 16, 3) + mask (S, 16, 16)."""

    tiles: np.ndarray
    sprites: np.ndarray
    sprite_mask: np.ndarray


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255


def _shape_layers(name: str) -> dict[str, np.ndarray]:
    """Boolean 16x16 masks of a shape's '#', 'o' and '+' cells."""
    grid = np.array([list(row) for row in SHAPES[name]])
    return {c: np.kron(grid == c, np.ones((2, 2), dtype=bool)) for c in "#o+"}


def _paint(name: str, base: np.ndarray, main: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour shape `name` with main colour `main` over `base` (16, 16, 3); return (rgb, mask)."""
    layers = _shape_layers(name)
    rgb = base.astype(np.float64).copy()
    rgb[layers["#"]] = main
    rgb[layers["o"]] = main * 0.45
    rgb[layers["+"]] = np.minimum(main * 0.5 + 140, 255)
    mask = layers["#"] | layers["o"] | layers["+"]
    return np.clip(rgb, 0, 255).astype(np.uint8), mask


def procedural_art(rng: np.random.Generator, tiles: tuple[str, ...], sprites: tuple[str, ...]) -> Art:
    """A fresh palette for one level: background, solids, pickups and each sprite get their own hue."""
    hue = rng.random()
    dark_background = rng.random() < 0.6
    background = _hsv(
        hue, rng.uniform(0.2, 0.6), rng.uniform(0.08, 0.25) if dark_background else rng.uniform(0.75, 0.95)
    )
    speckle = background * 0.7 + (60 if dark_background else -40)
    colours = {
        "solid": _hsv(hue + rng.uniform(0.25, 0.75), rng.uniform(0.4, 0.8), rng.uniform(0.45, 0.8)),
        "door": _hsv(rng.random(), 0.7, 0.75),
        "pickup": _hsv(rng.uniform(0.1, 0.18), 0.9, 1.0),  # gold-ish, so pickups read as pickups
        "gem": _hsv(rng.random(), 0.8, 1.0),
        "goal": _hsv(rng.random(), 0.9, 0.95),
        "player": _hsv(rng.random(), rng.uniform(0.6, 1.0), 1.0),
        "enemy": _hsv(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0)),
        "shot": _hsv(rng.random(), 0.3, 1.0),
    }
    role = {
        "ground": "solid",
        "brick": "solid",
        "wall": "solid",
        "door": "door",
        "coin": "pickup",
        "key": "pickup",
        "gem": "gem",
        "flag": "goal",
        "exit": "goal",
        "player": "player",
        "ship": "player",
        "life": "player",
        "slash": "shot",
        "star": "shot",
        "bullet": "shot",
        "enemy": "enemy",
        "alien": "enemy",
        "enemy_bullet": "enemy",
        "block_low": "gem",
        "block_mid": "door",
        "block_top": "goal",
        "paddle_left": "player",
        "paddle_right": "player",
        "ball": "shot",
    }
    plain = np.broadcast_to(background, (TILE, TILE, 3))
    tile_rgb = []
    for name in tiles:
        if name in ("sky", "floor", "space"):
            tile_rgb.append(_paint(name, plain, speckle)[0])
        else:
            tile_rgb.append(_paint(name, plain, colours[role[name]])[0])
    sprite_rgb, masks = zip(*(_paint(name, plain, colours[role[name]]) for name in sprites))
    return Art(np.stack(tile_rgb), np.stack(sprite_rgb), np.stack(masks))


class TilesetError(ValueError):
    """A tileset JSON/PNG that cannot be used (missing file, names, or cells outside the sheet)."""


class Tileset:
    """A user's sprite sheet: named opaque tiles and transparent sprites, rescaled to 16x16."""

    def __init__(self, json_path: str | Path):
        from PIL import Image

        self.path = Path(json_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"tileset JSON not found: {self.path}")
        try:
            spec = json.loads(self.path.read_text())
            image_path = self.path.parent / spec["image"]
            size = spec.get("tile_size", TILE)
            cell_w, cell_h = (size, size) if isinstance(size, int) else size
            cells = {"tiles": spec.get("tiles", {}), "sprites": spec.get("sprites", {})}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise TilesetError(
                f"{self.path}: not a tileset JSON ({err}); see core/games/art.py for the format"
            ) from None
        if not image_path.is_file():
            raise FileNotFoundError(f"tileset image {image_path} (named in {self.path}) not found")
        sheet = np.asarray(Image.open(image_path).convert("RGBA"))
        if "transparent" in spec:
            key = np.asarray(spec["transparent"], dtype=np.uint8)
            sheet = sheet.copy()
            sheet[..., 3] = np.where((sheet[..., :3] == key).all(-1), 0, sheet[..., 3])
        self.cells: dict[str, np.ndarray] = {}
        for kind, names in cells.items():
            for name, (col, row) in names.items():
                cell = sheet[row * cell_h : (row + 1) * cell_h, col * cell_w : (col + 1) * cell_w]
                if cell.shape[:2] != (cell_h, cell_w):
                    raise TilesetError(
                        f"{self.path}: {kind[:-1]} {name!r} at cell ({col}, {row}) lies outside "
                        f"the {sheet.shape[1]}x{sheet.shape[0]} sheet"
                    )
                ys = np.arange(TILE) * cell_h // TILE
                xs = np.arange(TILE) * cell_w // TILE
                self.cells[name] = cell[ys][:, xs]

    def art(self, tiles: tuple[str, ...], sprites: tuple[str, ...], game: str) -> Art:
        """The tiles and sprites a game needs, in its order; raises TilesetError naming any missing."""
        missing = [name for name in (*tiles, *sprites) if name not in self.cells]
        if missing:
            raise TilesetError(
                f"tileset {self.path} lacks {', '.join(missing)} needed by game {game!r} "
                f"(it needs tiles {', '.join(tiles)} and sprites {', '.join(sprites)})"
            )
        tile_rgb = np.stack([self.cells[name][..., :3] for name in tiles])
        sprite_rgba = np.stack([self.cells[name] for name in sprites])
        return Art(tile_rgb, sprite_rgba[..., :3].copy(), sprite_rgba[..., 3] >= 128)
