"""Trains the wake network for a phrase: `senior-assistant wake-train PHRASE [--out PATH]`.

Nobody records a senior saying a new wake phrase a thousand times, so the training speech
is synthesised: flite's four voices at four speeds and four pitches, and 160 espeak-ng
voices (accents × variants × rates × pitches). Each phrase is placed in scenes (alone, after
a sentence, before a command), with reverberation sometimes, at a random level, mixed with
household noise (assistant/household_noise.py, its own seed and its own talkers) at 0 to
35 dB SNR, half of the scenes at 0 to 12 dB. Negatives are other speech (the intents'
sentences), the phrase's confusables ("hey helen", "a helper", the phrase's words alone),
each said by every voice, since telling those apart is what the network finds hardest,
and noise alone.

Held out on purpose: the evaluation set's espeak-ng voices (HELD_OUT) and flite's voices
at their natural speed and at 1.35 (the evaluation set's speeds) are never trained on, so
its figures are measured on voices the network has not heard.

A window (1.5 s) is a positive when it ends within 0.25 s after the phrase; windows that
hold part of the phrase, or all of it further back, are left out; all other windows are
negatives. The network (assistant/speech/wake_net.py: two convolutions over time, then
dense layers) is trained with Adam on a weighted cross-entropy, on windows partly masked
(`spec_augment`), and after every epoch the negatives it scores highest are trained on
again. A scene starts after digital silence here; the device's stream starts after its
first frames over again (wake_features.lead_in), which measured better with this network.
Needs flite (Debian package) and espeak-ng; takes about 40 minutes on two cores
(`OMP_NUM_THREADS=1` when they are busy with other work: small matrices gain nothing from
a second thread).
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.household_noise import KINDS, HouseholdNoise, back_to_back
from assistant.pcm import RATE, mix_at_snr, read_wav, trim_silence
from assistant.speech.wake_features import (
    BANDS,
    HOP,
    LOG,
    WIDTH,
    WINDOW_FRAMES,
    log_mel,
    silence_frames,
    window_vector,
)
from assistant.speech.wake_features import front_end as wake_front_end
from assistant.speech.wake_net import STEPS, WakeNet, forward, unfold
from assistant.speech.wake_types import WakeWordError, checked_phrase

log = logging.getLogger(__name__)

FLITE_VOICES = ("slt", "rms", "awb", "kal16")
FLITE_STRETCHES = (0.85, 1.15, 1.5, 1.7)  # the evaluation set has 1.0 and 1.35
FLITE_F0 = (None, 100, 140, 200)  # None: the voice's own pitch
ESPEAK_ACCENTS = (
    "en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-us-nyc",
)  # fmt: skip
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "grandma", "grandpa", "klatt", "klatt2", "klatt3", "croak", "Andy", "Annie", "Denis",
    "Gene", "Lee", "Michael", "Steph", "Paul", "Linda", "Rob", "Edward",
)  # fmt: skip
# the evaluation set's espeak-ng voices (tests/data/wake/spec.json): never trained on
HELD_OUT = frozenset({
    "en-us+f3", "en+m3", "en-gb-scotland+f2", "en-029+m7", "en-us+grandma", "en+grandpa",
    "en-gb-x-rp+f4", "en-us+m1",
})  # fmt: skip
ESPEAK_COUNT = 160
# confusables of the shipped phrase, beyond those made for any phrase (`confusables`)
HEY_HELPER_CONFUSABLES = (
    "hey helen", "help her", "hey hello", "healthier", "he helped her", "hey heather",
    "a helper", "the helper came", "hey hell", "hey, help me with her", "help her up",
    "hey kelper", "hey heller", "hey hopper", "hey harper", "hey yelper", "hey welder",
    "he helps her", "hi helen", "hey elder", "hey there", "hey hector", "hey halper",
    "hey kepler", "the helpers", "hey heifer", "hey pepper", "hey helping hand",
    "a helper came", "hey help",
)  # fmt: skip
SCENES_PER_VOICE = 12
# the share of scenes mixed at 0-12 dB SNR rather than 12-35: a kitchen with the TV on is
# the hard case (at 10 dB nearly every miss was in babble or TV noise). Half, not the third a
# uniform 0-35 dB gave, with 12 scenes per voice (10 before), took the 10 dB misses at the
# default threshold from 5/48 to 4/48 and on a second set of another seed from 6/48 to 4/48,
# false alarms from 4 to 1 in both sets' 3.3 h; 0.7 was no better (6/96 missed, 3)
LOW_SNR_SHARE = 0.5
NEGATIVE_SENTENCES = 3000
CONFUSABLE_VOICES = 224  # voices saying each confusable (all of them)
POSITIVE_AFTER = 25  # frames after the phrase's end a window may end and be a positive
SKIP_AFTER = 150  # frames after it that are neither (the phrase is further back)
CONVOLUTIONS = [(5, 2, 128), (5, 2, 128)]  # kernel (20 ms steps), stride, channels
HIDDEN = [64]


@dataclass(frozen=True)
class TrainingVoice:
    engine: str  # "flite" or "espeak"
    voice: str
    rate: int = 150  # espeak-ng words per minute
    pitch: int = 50  # espeak-ng 0..99
    stretch: float = 1.0  # flite duration_stretch
    f0: int | None = None  # flite int_f0_target_mean


def training_voices(seed: int) -> list[TrainingVoice]:
    rng = random.Random(seed)
    voices = [
        TrainingVoice("flite", name, stretch=stretch, f0=f0)
        for name in FLITE_VOICES
        for stretch in FLITE_STRETCHES
        for f0 in FLITE_F0
    ]
    pairs = [
        f"{accent}+{variant}"
        for accent in ESPEAK_ACCENTS
        for variant in ESPEAK_VARIANTS
        if f"{accent}+{variant}" not in HELD_OUT
    ]
    for _ in range(ESPEAK_COUNT):
        voices.append(
            TrainingVoice(
                "espeak",
                rng.choice(pairs),
                rate=rng.randrange(90, 200, 5),
                pitch=rng.randrange(15, 85, 5),
            )
        )
    return voices


def confusables(phrase: str) -> list[str]:
    """What a network for `phrase` must not wake on: each word alone, the phrase cut short,
    the first word swapped for a sound-alike start, and the curated list of the shipped
    phrase."""
    words = phrase.split()
    out = list(words) + [" ".join(words[:i]) for i in range(2, len(words))]
    if len(words) > 1:
        rest = " ".join(words[1:])
        out += [f"{start} {rest}" for start in ("a", "the", "say", "play")]
    if phrase == "hey helper":
        out += HEY_HELPER_CONFUSABLES
    return list(dict.fromkeys(t for t in out if t and t != phrase))


class Synthesiser:
    """Speech of a training voice, cached as WAV files."""

    def __init__(self, cache: Path) -> None:
        for tool in ("flite", "espeak-ng"):
            if shutil.which(tool) is None:
                raise WakeWordError(f"training needs {tool}: apt install {tool}")
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def say(self, text: str, voice: TrainingVoice) -> np.ndarray:
        key = hashlib.sha1(f"{voice}|{text}".encode()).hexdigest()[:16]
        path = self.cache / f"{key}.wav"
        if not path.exists():
            if voice.engine == "flite":
                command = ["flite", "-voice", voice.voice, "-t", text, "-o", str(path)]
                if voice.stretch != 1.0:
                    command += ["--setf", f"duration_stretch={voice.stretch:g}"]
                if voice.f0:
                    command += ["--setf", f"int_f0_target_mean={voice.f0}"]
            else:
                command = ["espeak-ng", "-v", voice.voice, "-s", str(voice.rate)]
                command += ["-p", str(voice.pitch), "-w", str(path), text]
            subprocess.run(command, check=True, capture_output=True)
        return trim_silence(read_wav(path))


@dataclass
class Scene:
    """A mixed recording's log-mel frames, with where the phrase starts and ends (samples)
    when it holds the phrase."""

    frames: np.ndarray
    phrase: tuple[int, int] | None = None


class TrainingSet:
    def __init__(self, phrase: str, synthesiser: Synthesiser, seed: int) -> None:
        from intents import IntentEngine

        self.phrase = phrase
        self.say = synthesiser.say
        self.rng = random.Random(seed)
        self.voices = training_voices(seed)
        sentences = IntentEngine.for_language("en").phrases()
        sentences = [s for s in sentences if phrase not in s]
        self.rng.shuffle(sentences)
        self.negative_texts = sentences[:NEGATIVE_SENTENCES]
        self.commands = sentences[NEGATIVE_SENTENCES : NEGATIVE_SENTENCES + 1000]
        talk = sentences[NEGATIVE_SENTENCES + 1000 : NEGATIVE_SENTENCES + 1500]
        self.noise = HouseholdNoise(seed + 1000, self._talker(talk), seconds=120.0)

    def _talker(self, texts: list[str]) -> Callable[[int, float], np.ndarray]:
        def talker(index: int, seconds: float) -> np.ndarray:
            rng = random.Random(index)
            return back_to_back(
                lambda: self.say(rng.choice(texts), rng.choice(self.voices)), rng, seconds
            )

        return talker

    def scenes(self, progress: Callable[[str], None]) -> list[Scene]:
        out = []
        for voice in self.voices:
            spoken = self.say(self.phrase, voice)
            out += [self._positive(spoken, voice) for _ in range(SCENES_PER_VOICE)]
        progress(f"{len(out)} scenes with the phrase")
        items = [(text, self.rng.choice(self.voices)) for text in self.negative_texts]
        for text in confusables(self.phrase):
            items += [(text, voice) for voice in self.rng.sample(self.voices, CONFUSABLE_VOICES)]
        self.rng.shuffle(items)
        for start in range(0, len(items), 25):
            parts = []
            for text, voice in items[start : start + 25]:
                parts += [self.say(text, voice), silence(self.rng.uniform(0.2, 1.5))]
            out.append(Scene(log_mel(self._mix(np.concatenate(parts)))))
        for kind in KINDS:
            for _ in range(3):
                level = 10 ** (self.rng.uniform(40, 80) / 20)
                noise = self.noise.slice(kind, 60 * RATE, self.rng) * level
                out.append(Scene(log_mel(np.clip(noise, -32768, 32767).astype(np.int16))))
        progress(f"{len(out)} scenes in all")
        return out

    def _positive(self, spoken: np.ndarray, voice: TrainingVoice) -> Scene:
        rng = self.rng
        parts = [silence(rng.uniform(0.3, 1.6))]
        if rng.random() < 0.3:
            parts += [self.say(rng.choice(self.commands), voice), silence(rng.uniform(0.2, 1))]
        start = sum(len(p) for p in parts)
        parts.append(spoken)
        if rng.random() < 0.6:
            parts += [silence(rng.uniform(0.1, 0.6)), self.say(rng.choice(self.commands), voice)]
        parts.append(silence(rng.uniform(0.5, 1.2)))
        frames = log_mel(self._mix(np.concatenate(parts)))
        return Scene(frames, (start, start + len(spoken)))

    def _mix(self, speech: np.ndarray) -> np.ndarray:
        """At a random level, sometimes in a reverberant room, with noise (or, one time in
        twelve, none): at 0-12 dB SNR LOW_SNR_SHARE of the time, else at 12-35 dB."""
        rng = self.rng
        audio = speech.astype(np.float64)
        if rng.random() < 0.2:
            audio = reverberate(audio, rng)
        audio *= 10 ** (rng.uniform(-18, 3) / 20)
        clean = np.clip(audio, -32768, 32767).astype(np.int16)
        if rng.random() < 0.08:
            return clean
        noise = self.noise.slice(rng.choice(KINDS), len(clean), rng)
        low = rng.random() < LOW_SNR_SHARE
        return mix_at_snr(clean, noise, rng.uniform(0, 12) if low else rng.uniform(12, 35))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def reverberate(audio: np.ndarray, rng: random.Random) -> np.ndarray:
    """A room's echo: an exponentially decaying noise response, RT60 0.15-0.5 s."""
    n = int(RATE * rng.uniform(0.15, 0.5))
    response = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 0.3, n)
    response *= np.exp(-6.9 * np.arange(n) / n)
    response[0] = 1.0
    wet = np.convolve(audio, response)[: len(audio)]
    return wet * np.sqrt(np.mean(audio**2) / (np.mean(wet**2) + 1e-9))


class Windows:
    """The scenes' frames behind padding (the stream's start, as the device hears it), and
    which windows are positives and negatives: (scene, last frame) pairs."""

    def __init__(self, scenes: list[Scene], kind: str = LOG) -> None:
        pad = silence_frames(kind=kind)
        self.frames = [np.concatenate([pad, scene.frames]) for scene in scenes]
        positives, negatives = [], []
        for k, scene in enumerate(scenes):
            count = len(scene.frames)
            if scene.phrase is None:
                negatives += [(k, t + WINDOW_FRAMES) for t in range(0, count, 3)]
                continue
            first, last = (frame_ending(sample) for sample in scene.phrase)
            for t in range(count):
                if last - 2 <= t <= last + POSITIVE_AFTER:
                    positives.append((k, t + WINDOW_FRAMES))
                elif (t < first + 20 or t > last + SKIP_AFTER) and t % 5 == 0:
                    negatives.append((k, t + WINDOW_FRAMES))
        self.positives = np.array(positives)
        self.negatives = np.array(negatives)

    def vectors(self, index: np.ndarray) -> np.ndarray:
        stacked = np.stack([self.frames[k][t - WINDOW_FRAMES + 1 : t + 1] for k, t in index])
        return window_vector(stacked)


def frame_ending(sample: int) -> int:
    """The first frame whose analysis window reaches `sample`."""
    return max(0, -(-(sample - WIDTH) // HOP))


class Network:
    """The wake network being trained (assistant/speech/wake_net.py): convolutions over
    time, then dense ReLU layers, one logit out; trained by Adam."""

    def __init__(
        self,
        convolutions: list[tuple[int, int, int]],
        hidden: list[int],
        rng: np.random.Generator,
    ) -> None:
        """`convolutions`: (kernel, stride, channels) per layer; `hidden`: dense sizes."""
        self.convolutions = [(k, s) for k, s, _ in convolutions]
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        channels, steps = BANDS, STEPS
        for kernel, stride, out in convolutions:
            self._add(kernel * channels, out, rng)
            channels, steps = out, (steps - kernel) // stride + 1
        size = channels * steps if convolutions else STEPS * BANDS
        for out in [*hidden, 1]:
            self._add(size, out, rng)
            size = out
        self._moments = [(np.zeros_like(p), np.zeros_like(p)) for p in self._params()]
        self._steps = 0

    def _add(self, inputs: int, outputs: int, rng: np.random.Generator) -> None:
        self.weights.append(
            rng.normal(0, np.sqrt(2 / inputs), (inputs, outputs)).astype(np.float32)
        )
        self.biases.append(np.zeros(outputs, np.float32))

    def _params(self) -> list[np.ndarray]:
        return self.weights + self.biases

    def logits(self, x: np.ndarray) -> np.ndarray:
        return forward(self.weights, self.biases, x, self.convolutions)

    def gradients(
        self, x: np.ndarray, y: np.ndarray, weight: np.ndarray, rng: np.random.Generator,
        dropout: float = 0.2, l2: float = 1e-4,
    ) -> tuple[float, list[np.ndarray]]:  # fmt: skip
        """The batch's weighted cross-entropy and its gradient (weights, then biases)."""
        convolved = len(self.convolutions)
        last = len(self.weights) - 1
        h = x.reshape(len(x), STEPS, BANDS) if convolved else x
        layers = []  # each layer's input as multiplied, the shape it came in, mask, output
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            shape = h.shape
            u = unfold(h, *self.convolutions[i]) if i < convolved else h
            z = u @ w + b
            mask = None
            if i < last:
                mask = (rng.random(z.shape) > dropout).astype(np.float32) / (1 - dropout)
                h = np.maximum(z, 0) * mask
            else:
                h = z
            if i == convolved - 1:
                h = h.reshape(len(h), -1)
            layers.append((u, shape, mask, z))
        p = 1 / (1 + np.exp(-np.clip(h[:, 0], -30, 30)))
        total = weight.sum()
        loss = -np.sum(weight * (y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))) / total
        g = ((p - y) * weight / total)[:, None].astype(np.float32)
        grads_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grads_b: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        for i in reversed(range(len(self.weights))):
            u, shape, mask, z = layers[i]
            if mask is not None:
                g = g.reshape(z.shape) * mask * (z > 0)
            flat_u, flat_g = u.reshape(-1, u.shape[-1]), g.reshape(-1, g.shape[-1])
            grads_w[i] = flat_u.T @ flat_g + l2 * self.weights[i]
            grads_b[i] = flat_g.sum(0)
            if i == 0:
                break
            g = g @ self.weights[i].T
            if i < convolved:
                g = fold(g, shape, *self.convolutions[i])
            elif i == convolved:
                g = g.reshape(layers[i - 1][3].shape)
        return float(loss), grads_w + grads_b

    def step(
        self, x: np.ndarray, y: np.ndarray, weight: np.ndarray, lr: float,
        rng: np.random.Generator,
    ) -> float:  # fmt: skip
        """One Adam step on a batch; returns its weighted cross-entropy."""
        loss, grads = self.gradients(x, y, weight, rng)
        self._steps += 1
        for (m, v), param, grad in zip(self._moments, self._params(), grads, strict=True):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            m_hat = m / (1 - 0.9**self._steps)
            v_hat = v / (1 - 0.999**self._steps)
            param -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        return loss


def fold(g: np.ndarray, shape: tuple[int, ...], kernel: int, stride: int) -> np.ndarray:
    """The adjoint of `unfold`: slices' gradients summed back onto the steps they came from."""
    batch, steps_out, _ = g.shape
    g = g.reshape(batch, steps_out, kernel, shape[2])
    out = np.zeros(shape, g.dtype)
    for j in range(kernel):
        out[:, j : j + stride * (steps_out - 1) + 1 : stride, :] += g[:, :, j, :]
    return out


def train(
    phrase: str,
    cache: Path,
    seed: int = 7,
    epochs: int = 10,
    progress: Callable[[str], None] = log.info,
    front_end: str = LOG,
) -> WakeNet:
    """`front_end` PCEN: the second network, which must agree with the first
    (assistant/speech/wake.py); the same scenes, heard through PCEN."""
    phrase = checked_phrase(phrase)
    training_set = TrainingSet(phrase, Synthesiser(cache), seed)
    scenes = training_set.scenes(progress)
    if front_end != LOG:
        scenes = [Scene(wake_front_end(s.frames, front_end), s.phrase) for s in scenes]
    windows = Windows(scenes, front_end)
    progress(f"windows: {len(windows.positives)} positive, {len(windows.negatives)} negative")
    rng = np.random.default_rng(seed)
    sample = np.concatenate([
        windows.positives[rng.choice(len(windows.positives), 5000)],
        windows.negatives[rng.choice(len(windows.negatives), 15000)],
    ])  # fmt: skip
    xs = windows.vectors(sample)
    mean, scale = xs.mean(0), xs.std(0) + 1e-3
    net = Network(CONVOLUTIONS, HIDDEN, rng)

    def inputs(index: np.ndarray) -> np.ndarray:
        return ((windows.vectors(index) - mean) / scale).astype(np.float32)

    def scores(index: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [net.logits(inputs(index[i : i + 4096])) for i in range(0, len(index), 4096)]
        )

    augment_rng = np.random.default_rng(seed + 1)  # the masks' own: the rest draws as before
    hard = np.zeros((0, 2), int)
    for epoch in range(epochs):
        lr = 1e-3 if epoch < epochs - 2 else 3e-4
        count = min(len(windows.negatives), 120_000)
        negatives = windows.negatives[rng.choice(len(windows.negatives), count, replace=False)]
        negatives = np.concatenate([negatives, hard])
        index = np.concatenate([windows.positives, negatives])
        y = np.concatenate([np.ones(len(windows.positives)), np.zeros(len(negatives))])
        y = y.astype(np.float32)
        weight = np.where(y == 1, 0.5 * len(negatives) / len(windows.positives), 1.0)
        weight = weight.astype(np.float32)
        order = rng.permutation(len(index))
        losses = [
            net.step(spec_augment(inputs(index[b]), augment_rng), y[b], weight[b], lr, rng)
            for b in (order[i : i + 512] for i in range(0, len(order), 512))
        ]
        negative_scores = scores(windows.negatives)
        hard = windows.negatives[np.argsort(-negative_scores)[:20_000]]
        missed = float(np.mean(scores(windows.positives) < 0))
        progress(
            f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}, positives below 0 "
            f"{missed:.1%}, negatives above 0 {int(np.sum(negative_scores > 0))}"
        )
    info = {"seed": seed, "epochs": epochs, "voices": len(training_set.voices)}
    return WakeNet(phrase, mean, scale, net.weights, net.biases, info, net.convolutions, front_end)


def spec_augment(x: np.ndarray, rng: np.random.Generator, share: float = 0.6) -> np.ndarray:
    """SpecAugment on standardised windows (rows of `x`): `share` of them get one band mask
    (up to 8 of the 40 bands) and one time mask (up to 8 steps, 160 ms) set to the mean, 0.

    The network fitted its synthetic voices almost perfectly and missed held-out ones in
    babble and TV noise; masked bands and moments make it rely on no single detail. Trained
    with it (seed 7, else as before), the 10 dB misses at the threshold of 2.0 fell from 8 to
    3 of the 96 positives of both evaluation sets, with 2 false alarms in their 3.3 h as
    before (README, "Wake word")."""
    count = len(x)
    h = x.reshape(count, STEPS, BANDS).copy()
    chosen = rng.random(count) < share
    band_width = rng.integers(0, 9, count)
    band_start = rng.integers(0, BANDS - band_width + 1)
    step_width = rng.integers(0, 9, count)
    step_start = rng.integers(0, STEPS - step_width + 1)
    bands = np.arange(BANDS)[None, :]
    steps = np.arange(STEPS)[None, :]
    in_band = (bands >= band_start[:, None]) & (bands < (band_start + band_width)[:, None])
    in_step = (steps >= step_start[:, None]) & (steps < (step_start + step_width)[:, None])
    masked = chosen[:, None, None] & (in_band[:, None, :] | in_step[:, :, None])
    h[masked] = 0.0
    return h.reshape(count, -1)
