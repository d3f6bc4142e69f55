"""The wake-word network: a small multilayer perceptron over a 1.5 s window of log-mel
frames (assistant/speech/wake_features.py), saying how likely the window ends just after
the wake phrase. Trained for one phrase by `senior-assistant wake-train` on synthesised
voices and household noise (assistant/wake_train.py); stored as one .npz file holding the
phrase, the input standardisation and the layers. Plain numpy: no new dependency, and a
forward pass over a window costs about 0.4 M multiply-adds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.speech import wake_features
from assistant.speech.wake_types import WakeWordError

FORMAT = 1
DEFAULT_MODEL = Path(__file__).resolve().parent / "wake_models" / "hey_helper.npz"


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

    def logits(self, windows: np.ndarray) -> np.ndarray:
        """Log-odds that each window (rows of window_vector) ends just after the phrase."""
        x = ((windows - self.mean) / self.scale).astype(np.float32)
        return forward(self.weights, self.biases, x)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "scale": self.scale}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{i}"] = w.astype(np.float16)
            arrays[f"b{i}"] = b.astype(np.float32)
        meta = {"format": FORMAT, "phrase": self.phrase, "features": _feature_spec(), **self.info}
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
        if meta.get("format") != FORMAT or meta.get("features") != _feature_spec():
            raise WakeModelError(
                f"{path} was made for other features; train it again: senior-assistant wake-train"
            )
        info = {k: v for k, v in meta.items() if k not in ("format", "phrase", "features")}
        return cls(meta["phrase"], mean, scale, weights, biases, info)


def forward(weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The perceptron's logit for each row of `x`: ReLU layers, a linear last one."""
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        x = x @ w + b
        if i < last:
            x = np.maximum(x, 0.0)
    return x[..., 0]


def _feature_spec() -> dict:
    f = wake_features
    return {
        "rate": f.RATE, "hop": f.HOP, "width": f.WIDTH, "fft": f.FFT, "bands": f.BANDS,
        "window": f.WINDOW_FRAMES, "pool": f.POOL, "floor": f.FLOOR,
    }  # fmt: skip
