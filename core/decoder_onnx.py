"""The frame decoder run by ONNX Runtime on CPU: a drop-in for the decoder in play (the token
decoder's ids or the upsampler's small frame in, the next frame out).

onnxruntime is optional (`pip install 'pocketworld[onnx]'`); without it this backend is an
EngineError and everything else works. The decoder is exported from the torch module when a
model is prepared for play (about 1.5 s for nano), so trained or fine-tuned weights need no
separate export step. The TorchScript-based exporter is used because it needs only `onnx`
and is 10x quicker than the torch.export-based one (which also needs onnxscript); torch 2.13
still ships it, deprecated.
"""

from __future__ import annotations

import io
import warnings

import torch
import torch.nn as nn

from core.config import WorldModelConfig


class OnnxFrameDecoder(nn.Module):
    """Same call as the decoder it replaces: tokens (B, 16, 16) ids or a small frame (B, 3, r, r), and
    prev_frames (B, 3, H, W) -> frames (B, 3, H, W)."""

    def __init__(self, decoder: nn.Module, config: WorldModelConfig, threads: int):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            from core.engine import EngineError

            raise EngineError("the onnx decoder needs onnxruntime and onnx: pip install 'pocketworld[onnx]'") from None
        size = config.image_size
        if config.family == "frames":
            r = config.decoder.resolution
            given = torch.zeros(1, 3, r, r)
        else:
            given = torch.zeros(1, config.tokenizer.grid_size, config.tokenizer.grid_size, dtype=torch.long)
        example = (given, torch.zeros(1, 3, size, size))
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            torch.onnx.export(
                decoder.float().eval(),
                example,
                buffer,
                dynamo=False,
                opset_version=17,
                input_names=["tokens", "prev_frames"],
                output_names=["frames"],
                dynamic_axes={"tokens": {0: "batch"}, "prev_frames": {0: "batch"}, "frames": {0: "batch"}},
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No busy-waiting between calls: on a shared 2-core machine a spinning pool steals the
        # dynamics' (and other players') cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def forward(self, tokens: torch.Tensor, prev_frames: torch.Tensor) -> torch.Tensor:
        given = tokens.float().contiguous() if tokens.is_floating_point() else tokens
        frames = self.session.run(
            None, {"tokens": given.cpu().numpy(), "prev_frames": prev_frames.float().contiguous().numpy()}
        )[0]
        return torch.from_numpy(frames).to(prev_frames.dtype)
