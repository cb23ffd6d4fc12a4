import numpy as np
import torch

from core.config import TokenizerConfig
from core.frames import to_model, to_uint8
from core.tokenizer import FSQ, Tokenizer, codebook_usage, rare_colour_mask, reconstruction_loss
from tests.synthetic import psnr, sprite_frames


def test_frames_become_a_16x16_grid_of_512_ids_and_back():
    tokenizer = Tokenizer(TokenizerConfig(channels=(8, 8, 16, 16), decoder_channels=(16, 16, 8, 8)))
    frames = to_model(sprite_frames(2))
    ids = tokenizer.encode(frames)
    assert ids.shape == (2, 16, 16) and ids.dtype == torch.long
    assert 0 <= ids.min() and ids.max() < 512
    assert tokenizer.decode(ids).shape == frames.shape


def test_fsq_ids_and_codes_agree():
    fsq = FSQ((8, 8, 8))
    ids = torch.arange(512).view(2, 16, 16)
    codes = fsq.ids_to_codes(ids)
    assert codes.min() == -1 and codes.max() == 1
    # the latent that maps exactly onto a code comes back as that code's id
    latents = torch.atanh(codes.clamp(-0.999999, 0.999999))
    assert torch.equal(fsq(latents)[1], ids)


def test_usage_counts_a_collapsed_and_a_uniform_code_distribution():
    assert codebook_usage(torch.zeros(1000, dtype=torch.long), 512) == {"used_fraction": 1 / 512, "perplexity": 1.0}
    uniform = codebook_usage(torch.arange(512).repeat(4), 512)
    assert uniform["used_fraction"] == 1.0 and abs(uniform["perplexity"] - 512) < 1e-2


def test_tokenizer_overfits_synthetic_sprites_to_30_db():
    """Encoder, FSQ's straight-through gradient and decoder train end to end. The network is fully
    convolutional, so 64x64 frames (a 4x4 grid of ids) run every layer that 256x256 ones do, 16x cheaper."""
    torch.manual_seed(0)
    frames = sprite_frames(2, size=64, seed=1)
    batch = to_model(frames)
    tokenizer = Tokenizer(
        TokenizerConfig(image_size=64, channels=(8, 16, 32, 32), decoder_channels=(32, 32, 16, 8), expand_ratio=2)
    )
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=3e-3)
    for _ in range(300):
        recon, ids = tokenizer(batch)
        loss = reconstruction_loss(recon, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        ids = tokenizer.encode(batch)
        recon = to_uint8(tokenizer.decode(ids))
    quality = np.mean([psnr(r, f) for r, f in zip(recon, frames)])
    usage = codebook_usage(ids, 512)
    print(
        f"tokenizer overfit: PSNR {quality:.2f} dB, codebook used {usage['used_fraction']:.3f}, "
        f"perplexity {usage['perplexity']:.1f}"
    )
    assert quality >= 30
    # the 32 ids of two frames cover ~20 codes; a collapsed quantizer (or 8 codes) gives ~5
    assert usage["perplexity"] > 8


def test_rare_colours_mark_the_sprite_and_weigh_its_error():
    frames = np.full((2, 256, 256, 3), (30, 40, 30), np.uint8)
    frames[:, 100:110, 50:58] = (230, 60, 60)  # an 8x10 player: 0.12% of the frame
    frames[1, :, 128:] = (120, 90, 200)  # half the second frame is a wall: common, not rare
    x = to_model(frames)
    mask = rare_colour_mask(x)
    assert mask.shape == (2, 1, 256, 256)
    assert mask[:, 0, 100:110, 50:58].all() and mask.sum() == 2 * 80  # the sprites and nothing else

    missing = x.clone()
    missing[:, :, 100:110, 50:58] = x[:, :, 0:10, 0:8]  # the same frames with the player painted over
    plain, weighted = reconstruction_loss(missing, x), reconstruction_loss(missing, x, rare_weight=20.0)
    assert weighted > 15 * plain  # a dropped sprite is no longer a rounding error
    assert reconstruction_loss(x, x, rare_weight=20.0) == 0
