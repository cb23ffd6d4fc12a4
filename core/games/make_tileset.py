"""Make the example tileset shipped in core/games/assets/ (pocket_tiles.png + pocket_tiles.json).

Our own art, in a fixed warm palette with outlined sprites and shaded tiles, laid out like an
OpenGameArt sheet (16x16 cells, RGBA, a JSON naming the cells), so it doubles as the template
for bringing your own art. Run: python -m core.games.make_tileset
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.games.art import SHAPES, TILE, _shape_layers

ASSETS = Path(__file__).parent / "assets"
BACKGROUNDS = {"sky": (92, 148, 252), "floor": (58, 46, 40), "space": (8, 8, 24), "star": (8, 8, 24)}
COLOURS = {
    "ground": (200, 76, 12),
    "brick": (168, 60, 32),
    "wall": (110, 110, 130),
    "door": (150, 90, 30),
    "coin": (252, 188, 60),
    "gem": (60, 220, 200),
    "key": (252, 220, 60),
    "flag": (40, 180, 60),
    "exit": (200, 200, 255),
    "star": (255, 255, 220),
    "sky": (252, 252, 252),
    "floor": (80, 66, 56),
    "space": (8, 8, 24),
    "player": (230, 50, 40),
    "enemy": (140, 80, 40),
    "slash": (255, 255, 255),
    "ship": (80, 200, 255),
    "alien": (120, 230, 80),
    "bullet": (255, 255, 140),
    "enemy_bullet": (255, 90, 200),
    "life": (230, 50, 40),
    "block_low": (60, 200, 90),
    "block_mid": (250, 170, 40),
    "block_top": (220, 60, 160),
    "paddle_left": (200, 200, 215),
    "paddle_right": (200, 200, 215),
    "ball": (255, 255, 255),
}
TILES = ("sky", "ground", "brick", "coin", "flag", "floor", "wall", "gem", "key", "door", "exit", "space", "star")
SPRITES = ("player", "enemy", "slash", "ship", "alien", "bullet", "enemy_bullet", "life")
# bricks' art, placed after the others so that their cells keep their places in the sheet
LATER_TILES = ("block_low", "block_mid", "block_top")
LATER_SPRITES = ("paddle_left", "paddle_right", "ball")
BACKGROUND_OF = {"coin": "sky", "flag": "sky", "gem": "floor", "key": "floor", "exit": "floor"}


def draw(name: str, sprite: bool) -> np.ndarray:
    """One 16x16 RGBA cell: shaded shape; sprites get a dark outline and transparency."""
    layers = _shape_layers(name)
    main = np.array(COLOURS[name], dtype=float)
    cell = np.zeros((TILE, TILE, 4))
    if not sprite:
        cell[..., :3] = BACKGROUNDS.get(BACKGROUND_OF.get(name, name), (0, 0, 0))
        cell[..., 3] = 255
        if name in BACKGROUNDS and name != "star":
            main = np.array(BACKGROUNDS[name], dtype=float) * 1.3 + 10
    shade = np.linspace(1.15, 0.8, TILE)[:, None, None]  # lit from above
    body = layers["#"] | layers["o"] | layers["+"]
    colour = np.where(layers["+"][..., None], np.minimum(main * 0.4 + 160, 255), main) * shade
    colour = np.where(layers["o"][..., None], main * 0.35, colour)
    cell[body, :3] = np.clip(colour, 0, 255)[body]
    cell[body, 3] = 255
    if sprite:
        grown = np.zeros_like(body)
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            grown |= np.roll(body, (dy, dx), axis=(0, 1))
        outline = grown & ~body
        cell[outline] = (20, 12, 28, 255)
    return cell.astype(np.uint8)


def main() -> None:
    from PIL import Image

    names = [(n, False) for n in TILES] + [(n, True) for n in SPRITES]
    names += [(n, False) for n in LATER_TILES] + [(n, True) for n in LATER_SPRITES]
    columns = 8
    sheet = np.zeros((TILE * ((len(names) + columns - 1) // columns), TILE * columns, 4), dtype=np.uint8)
    spec = {"image": "pocket_tiles.png", "tile_size": TILE, "tiles": {}, "sprites": {}}
    for k, (name, sprite) in enumerate(names):
        assert name in SHAPES, name
        row, col = divmod(k, columns)
        sheet[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE] = draw(name, sprite)
        spec["sprites" if sprite else "tiles"][name] = [col, row]
    ASSETS.mkdir(exist_ok=True)
    Image.fromarray(sheet).save(ASSETS / "pocket_tiles.png")
    (ASSETS / "pocket_tiles.json").write_text(json.dumps(spec, indent=1) + "\n")
    tiles, sprites = len(spec["tiles"]), len(spec["sprites"])
    print(f"wrote {ASSETS / 'pocket_tiles.png'} and pocket_tiles.json ({tiles} tiles, {sprites} sprites)")


if __name__ == "__main__":
    main()
