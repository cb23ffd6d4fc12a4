import numpy as np
import torch

from core.config import TokenizerConfig
from core.frames import to_model, to_uint8
from core.tokenizer import FSQ, Tokenizer, codebook_usage, reconstruction_loss
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
    torch.manual_seed(0)
    frames = sprite_frames(2, seed=1)
    batch = to_model(frames)
    tokenizer = Tokenizer(TokenizerConfig(channels=(8, 16, 32, 32), decoder_channels=(32, 32, 16, 8), expand_ratio=2))
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=3e-3)
    for step in range(350):
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
    print(f"tokenizer overfit: PSNR {quality:.2f} dB, codebook used {usage['used_fraction']:.3f}, "
          f"perplexity {usage['perplexity']:.1f}")
    assert quality >= 30
    # two flat frames hold ~15 distinct kinds of patch; the ids must tell them apart, not collapse
    assert usage["perplexity"] > 4
