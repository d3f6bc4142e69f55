"""The wake-word network over a 1.5 s window of log-mel frames
(assistant/speech/wake_features.py), saying how likely the window ends just after the wake
phrase. Trained for one phrase by `senior-assistant wake-train` on synthesised voices and
household noise (assistant/wake_train.py); stored as one .npz file holding the phrase, the
input standardisation and the layers. Plain numpy: no new dependency.

The first layers are convolutions over time (a time-delay network): each looks at a few
20 ms steps of all bands at a time, with the same weights wherever the step lies in the
window, so a sound is recognised the same early or late in the window and by fewer
weights than a dense layer needs (voices it was not trained on generalise better). The
dense layers after them see where in the window each sound lies. A network with no
convolutions is a plain perceptron (the first network shipped was one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.speech import wake_features
from assistant.speech.wake_types import WakeWordError

FORMAT = 1
STEPS = wake_features.WINDOW_FRAMES // wake_features.POOL  # a window's 20 ms steps
_META_KEYS = ("format", "phrase", "features", "convolutions")
DEFAULT_MODEL = Path(__file__).resolve().parent / "wake_models" / "hey_helper.npz"
# the second network shipped for the phrase, through the other front end: the device wakes
# when both agree (assistant/speech/wake.py)
DEFAULT_CONFIRM = DEFAULT_MODEL.with_name("hey_helper_pcen.npz")


class WakeModelError(WakeWordError):
    """A wake model file that cannot be used."""


@dataclass
class WakeNet:
    phrase: str
    mean: np.ndarray  # input standardisation
    scale: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    info: dict
    convolutions: list[tuple[int, int]] = field(default_factory=list)  # (kernel, stride)
    front_end: str = wake_features.LOG  # what it hears (wake_features: LOG or PCEN)

    def logits(self, windows: np.ndarray) -> np.ndarray:
        """Log-odds that each window (rows of window_vector) ends just after the phrase."""
        x = ((windows - self.mean) / self.scale).astype(np.float32)
        return forward(self.weights, self.biases, x, self.convolutions)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "scale": self.scale}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{i}"] = w.astype(np.float16)
            arrays[f"b{i}"] = b.astype(np.float32)
        meta = {
            "format": FORMAT, "phrase": self.phrase, "features": _feature_spec(self.front_end),
            "convolutions": [[int(k), int(s)] for k, s in self.convolutions], **self.info,
        }  # fmt: skip
        with open(path, "wb") as out:
            np.savez_compressed(out, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> WakeNet:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                layers = sum(1 for key in data.files if key.startswith("w"))
                weights = [data[f"w{i}"].astype(np.float32) for i in range(layers)]
                biases = [data[f"b{i}"].astype(np.float32) for i in range(layers)]
                mean, scale = data["mean"], data["scale"]
        except FileNotFoundError:
            raise WakeModelError(f"no wake model at {path}") from None
        except (OSError, ValueError, KeyError) as exc:
            raise WakeModelError(f"{path} is not a wake model ({exc})") from None
        features = meta.get("features") or {}
        front_end = wake_features.PCEN if "pcen" in features else wake_features.LOG
        if meta.get("format") != FORMAT or features != _feature_spec(front_end):
            raise WakeModelError(
                f"{path} was made for other features; train it again: senior-assistant wake-train"
            )
        convolutions = [(int(k), int(s)) for k, s in meta.get("convolutions", [])]
        info = {k: v for k, v in meta.items() if k not in _META_KEYS}
        return cls(meta["phrase"], mean, scale, weights, biases, info, convolutions, front_end)


def forward(
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    x: np.ndarray,
    convolutions: list[tuple[int, int]] | tuple = (),
) -> np.ndarray:
    """The network's logit for each row of `x` (standardised window vectors): the first
    len(convolutions) layers convolve over time, the rest are dense; ReLU between layers,
    the last one linear."""
    h = x.reshape(len(x), STEPS, wake_features.BANDS) if convolutions else x
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if i < len(convolutions):
            h = unfold(h, *convolutions[i]) @ w + b
            if i == len(convolutions) - 1:
                h = h.reshape(len(h), -1)
        else:
            h = h @ w + b
        if i < last:
            h = np.maximum(h, 0.0)
    return h[..., 0]


def unfold(h: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """(batch, steps, channels) → (batch, steps out, kernel × channels): the slices a
    convolution over time multiplies by its weights."""
    steps_out = (h.shape[1] - kernel) // stride + 1
    index = np.arange(steps_out)[:, None] * stride + np.arange(kernel)[None, :]
    return h[:, index, :].reshape(len(h), steps_out, kernel * h.shape[2])


def _feature_spec(front_end: str = wake_features.LOG) -> dict:
    f = wake_features
    spec = {
        "rate": f.RATE, "hop": f.HOP, "width": f.WIDTH, "fft": f.FFT, "bands": f.BANDS,
        "window": f.WINDOW_FRAMES, "pool": f.POOL, "floor": f.FLOOR,
    }  # fmt: skip
    if front_end == f.PCEN:
        spec["pcen"] = [f.PCEN_SMOOTH, f.PCEN_ALPHA, f.PCEN_DELTA, f.PCEN_ROOT]
    return spec
