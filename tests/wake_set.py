"""The wake-word evaluation set, generated (seeded, deterministic) from the small spec in
tests/data/wake/spec.json into a cache folder; no audio is committed.

Positives: the wake phrase said by every voice of the spec (flite's four voices at two
speeds, espeak-ng variants at several rates), alone or followed by a command, with a
second of noise before and after, mixed with one of the noise kinds at each SNR.
Negatives: long streams of other speech (the intent sets' sentences and the spec's
sound-alikes such as "hey helen" and "help her", each by several voices, with pauses)
mixed with noise at the same SNR, plus streams of household noise alone (a running tap,
a TV = other speech, babble, white and pink noise).

`python -m tests.wake_set [--snr 10] [--subset]` prints the JSONL dataset's path, for
`senior-assistant eval DATASET --wake "hey helper"`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.config import cache_dir
from assistant.household_noise import HouseholdNoise, back_to_back
from assistant.pcm import RATE, mix_at_snr, read_wav, write_wav
from assistant.pcm import trim_silence as trim
from tests.speech import SpeechMaker

SPEC = Path(__file__).resolve().parent / "data" / "wake" / "spec.json"
LEAD_S = 1.0  # noise before the phrase
TAIL_S = 1.0
FOLLOW_GAP_S = 0.3  # between the wake phrase and a command after it


def cache_root() -> Path:
    return Path(os.environ.get("WAKE_SET_CACHE") or cache_dir() / "wake-set")


@dataclass(frozen=True)
class Voice:
    engine: str
    voice: str
    rate: int = 150
    stretch: float = 1.0

    @property
    def name(self) -> str:
        if self.engine == "flite":
            return f"flite-{self.voice}" + ("" if self.stretch == 1.0 else f"-x{self.stretch:g}")
        return f"espeak-{self.voice}-{self.rate}"


class WakeSet:
    def __init__(
        self, spec_path: Path = SPEC, cache: Path | None = None, seed: int | None = None
    ) -> None:
        """`seed`: instead of the spec's, for a second set of the same design (other noise,
        other babble talkers, other pauses) that checks a figure is not one set's luck."""
        self.spec_path = spec_path
        raw = spec_path.read_bytes()
        self.spec = json.loads(raw)
        self.phrase: str = self.spec["phrase"]
        self.seed: int = self.spec["seed"] if seed is None else seed
        if seed is not None:
            raw += f"seed={seed}".encode()
        digest = hashlib.sha1(raw).hexdigest()[:10]
        self.directory = (cache or cache_root()) / digest
        self.directory.mkdir(parents=True, exist_ok=True)
        self.maker = SpeechMaker(self.directory / "tts")
        self.maker.directory.mkdir(exist_ok=True)
        self.voices = [Voice(**v) for v in self.spec["voices"]]
        self._noise = HouseholdNoise(self.seed, self.talker)

    # speech -------------------------------------------------------------------------
    def say(self, text: str, voice: Voice) -> np.ndarray:
        if voice.engine == "flite":
            path = self.maker.flite(text, voice.voice, voice.stretch)
        else:
            path = self.maker.espeak_ng(text, voice.voice, voice.rate)
        return trim(read_wav(path))

    def negative_texts(self) -> list[str]:
        texts = []
        for name in self.spec["negative_texts"]:
            for line in (self.spec_path.parent / name).read_text().splitlines():
                if line.strip() and "text" in (case := json.loads(line)):
                    texts.append(case["text"])
        return texts

    # noise --------------------------------------------------------------------------
    def noise(self, kind: str) -> np.ndarray:
        """A minute (looped when longer is needed) of one kind of noise, float64."""
        return self._noise.noise(kind)

    def talker(self, index: int, seconds: float) -> np.ndarray:
        """Other speech (the held-out sentences) by one voice, back to back."""
        rng = random.Random(self.seed * 100 + index)
        texts = self.negative_texts()
        voice = self.voices[index % len(self.voices)]
        return back_to_back(lambda: self.say(rng.choice(texts), voice), rng, seconds)

    def noise_slice(self, kind: str, length: int, rng: random.Random) -> np.ndarray:
        return self._noise.slice(kind, length, rng)

    # the cases ----------------------------------------------------------------------
    def positives(self, snr_db: float) -> list[Path]:
        rng = random.Random(f"{self.seed}-pos-{snr_db}")
        paths = []
        kinds = self.spec["noises"]
        for i, voice in enumerate(self.voices):
            for j, follower in enumerate(self.spec["followers"]):
                kind = kinds[(i + j) % len(kinds)]
                path = self.directory / f"pos-{snr_db:g}dB-{voice.name}-{j}-{kind}.wav"
                paths.append(path)
                if path.exists():
                    continue
                parts = [self.say(self.phrase, voice)]
                if follower:
                    gap = np.zeros(int(RATE * FOLLOW_GAP_S), np.int16)
                    parts += [gap, self.say(follower, voice)]
                speech = pad(np.concatenate(parts), LEAD_S, TAIL_S)
                noise = self.noise_slice(kind, len(speech), rng)
                write_wav(path, mix_at_snr(speech, noise, snr_db))
        return paths

    def negative_items(self) -> list[tuple[str, Voice]]:
        rng = random.Random(f"{self.seed}-neg")
        items = []
        texts = self.negative_texts()
        for repeat in range(self.spec["negative_repeats"]):
            for k, text in enumerate(texts):
                items.append((text, self.voices[(k * 5 + repeat * 3) % len(self.voices)]))
        for text in self.spec["soundalikes"]:
            items += [(text, voice) for voice in self.voices]
        rng.shuffle(items)
        return items

    def negatives(self, snr_db: float, streams: int | None = None) -> list[Path]:
        """Speech streams of about `stream_minutes` each (all, or the first `streams`;
        the sound-alikes come first, in a stream of their own), then the noise alone."""
        items = self.negative_items()
        soundalikes = set(self.spec["soundalikes"])
        items.sort(key=lambda item: item[0] not in soundalikes)  # stable: the rest shuffled
        kinds = self.spec["noises"]
        per_stream = self.spec["stream_minutes"] * 60 * RATE
        paths: list[Path] = []
        chunks = self._chunks(items, per_stream)
        for s, chunk in enumerate(chunks[:streams] if streams is not None else chunks):
            kind = kinds[s % len(kinds)]
            path = self.directory / f"neg-{snr_db:g}dB-stream{s:02d}-{kind}.wav"
            paths.append(path)
            if path.exists():
                continue
            rng = random.Random(f"{self.seed}-neg-{s}-{snr_db}")
            parts = []
            for text, voice in chunk:
                gap = np.zeros(int(RATE * rng.uniform(0.3, 1.5)), np.int16)
                parts += [self.say(text, voice), gap]
            speech = np.concatenate(parts)
            write_wav(path, mix_at_snr(speech, self.noise_slice(kind, len(speech), rng), snr_db))
        if streams is None:
            paths += self.noise_only()
        return paths

    def _chunks(self, items: list[tuple[str, Voice]], per_stream: int) -> list[list]:
        """Items grouped into streams by an estimate of their length (14 chars a second),
        so that building a few streams does not synthesise them all."""
        chunks: list[list] = [[]]
        length = 0
        for text, voice in items:
            if length >= per_stream:
                chunks.append([])
                length = 0
            chunks[-1].append((text, voice))
            length += int(RATE * (len(text) / 14 + 0.9))
        return chunks

    def noise_only(self) -> list[Path]:
        paths = []
        seconds = self.spec["noise_only_minutes"] * 60
        for kind in self.spec["noises"]:
            path = self.directory / f"neg-noise-{kind}.wav"
            paths.append(path)
            if not path.exists():
                rng = random.Random(f"{self.seed}-noise-{kind}")
                noise = self.noise_slice(kind, int(RATE * seconds), rng) * 1000.0  # -30 dBFS
                write_wav(path, np.clip(noise, -32768, 32767).astype(np.int16))
        return paths

    def dataset(self, snr_db: float, subset: bool = False) -> Path:
        """A JSONL of wake cases (the whole set, or the fixed subset the tests use: every
        second positive, the sound-alike stream and one more stream)."""
        positives = self.positives(snr_db)
        negatives = self.negatives(snr_db, streams=2 if subset else None)
        if subset:
            positives = positives[::2]
        name = f"wake-{snr_db:g}dB{'-subset' if subset else ''}.jsonl"
        path = self.directory / name
        lines = [json.dumps({"audio": p.name, "wake": True}) for p in positives]
        lines += [json.dumps({"audio": p.name, "wake": False}) for p in negatives]
        path.write_text("\n".join(lines) + "\n")
        return path


def pad(samples: np.ndarray, lead_s: float, tail_s: float) -> np.ndarray:
    lead = np.zeros(int(RATE * lead_s), np.int16)
    tail = np.zeros(int(RATE * tail_s), np.int16)
    return np.concatenate([lead, samples, tail])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.wake_set")
    parser.add_argument("--snr", type=float, default=10.0)
    parser.add_argument("--subset", action="store_true")
    parser.add_argument("--seed", type=int, help="instead of the spec's: another set")
    args = parser.parse_args()
    print(WakeSet(seed=args.seed).dataset(args.snr, args.subset))


if __name__ == "__main__":
    main()
