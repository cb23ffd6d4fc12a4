import torch
import torch.nn.functional as F

from core.config import DynamicsConfig
from core.dynamics import Dynamics
from tests.toy import SPRITE, sprite_clips


def toy_dynamics(**overrides) -> Dynamics:
    config = dict(
        vocab_size=4,
        tokens_per_frame=64,
        d_model=64,
        n_layers=2,
        n_heads=4,
        d_state=8,
        expand=1,
        headdim=16,
        mlp_ratio=2.0,
        chunk_size=4,
    )
    config.update(overrides)
    return Dynamics(DynamicsConfig(**config))


def test_forward_gives_next_frame_logits_for_every_frame():
    model = toy_dynamics()
    tokens, actions = sprite_clips(2, 5)
    assert model(tokens, actions).shape == (2, 5, 64, 4)


def test_stepping_frame_by_frame_equals_the_clip_forward():
    torch.manual_seed(0)
    model = toy_dynamics(vocab_size=16, chunk_size=3).eval()
    tokens = torch.randint(0, 16, (2, 7, 64))
    actions = torch.randint(0, 18, (2, 7))
    with torch.no_grad():
        full = model(tokens, actions)
        state = model.init_state(2)
        stepped = []
        for t in range(7):
            logits, state = model.step(tokens[:, t], actions[:, t], state)
            stepped.append(logits)
    stepped = torch.stack(stepped, 1)
    assert (stepped - full).abs().max() / full.abs().max() < 1e-5


def test_the_action_of_each_frame_is_what_it_attends_to():
    """Changing only the action at frame t changes logits from frame t on, never before."""
    torch.manual_seed(0)
    model = toy_dynamics().eval()
    tokens, actions = sprite_clips(1, 6)
    changed = actions.clone()
    changed[0, 3] = (actions[0, 3] + 1) % 18
    with torch.no_grad():
        a, b = model(tokens, actions), model(tokens, changed)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6)
    assert not torch.allclose(a[:, 3], b[:, 3], atol=1e-4)


def test_dynamics_learns_the_sprite_toy_and_follows_the_action():
    """Training finds where the sprite goes under each action. A 4x4 torus and one block (spatial
    attention, Mamba across frames, action cross-attention) is the smallest toy where that needs all
    three: a model that ignores the action places the sprite right about one time in nine."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    grid = 4
    model = toy_dynamics(tokens_per_frame=grid * grid, d_model=32, n_heads=2, n_layers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    steps = 400
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps, pct_start=0.1)
    for _ in range(steps):
        tokens, actions = sprite_clips(8, 8, grid=grid, generator=generator)
        logits = model(tokens, actions)[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, 4), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()

    model.eval()
    tokens, actions = sprite_clips(64, 8, grid=grid, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        predicted = model(tokens, actions)[:, :-1].argmax(-1)
    target = tokens[:, 1:]
    token_accuracy = (predicted == target).float().mean().item()
    sprite_accuracy = (predicted[target == SPRITE] == SPRITE).float().mean().item()
    frame_accuracy = (predicted == target).all(-1).float().mean().item()
    print(
        f"toy dynamics: token acc {token_accuracy:.4f}, sprite-cell acc {sprite_accuracy:.4f}, "
        f"exact frames {frame_accuracy:.4f}"
    )
    assert token_accuracy >= 0.95
    # the background alone would score 15/16 per token: the sprite itself must be placed right
    assert sprite_accuracy >= 0.95

    # same history, different action -> the sprite is predicted in a different cell
    history, history_actions = tokens[:8, :4], actions[:8, :4].clone()
    left, right = history_actions.clone(), history_actions.clone()
    left[:, -1], right[:, -1] = 4, 3  # LEFT, RIGHT
    with torch.no_grad():
        where_left = model(history, left)[:, -1].argmax(-1)
        where_right = model(history, right)[:, -1].argmax(-1)
    assert (where_left != where_right).any(-1).all()
