"""eSpeak NG speech synthesis through ctypes, from the library inside the ``espeakng-loader``
wheel (no system package needed). Used only to generate the synthetic keyword set.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE, ESPEAK_PITCH, ESPEAK_RANGE, ESPEAK_WORDGAP = 1, 3, 4, 7
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class ESpeak:
    """A synchronous eSpeak NG engine returning int16 waveforms at its native rate."""

    _lock = threading.Lock()
    _instance: "ESpeak | None" = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - dependency declared in pyproject
            raise RuntimeError("the synthetic keyword set needs the 'espeakng-loader' package "
                               "(pip install espeakng-loader)") from e
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, ctypes.c_char_p(data), 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {data.decode()})")
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, events):
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)      # keep a reference: ctypes must not free it
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "ESpeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int = 50) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``"en-us+m3"``) at ``rate`` words/min and ``pitch`` (0–99).

        The output depends on what the engine spoke before (its pitch flutter carries over), so
        callers that need reproducible audio use a fresh process and a fixed call order."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
            self.lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
            self._chunks = []
            buf = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(ctypes.c_char_p(buf), ctypes.c_size_t(len(buf)), 0, POS_CHARACTER, 0,
                                        ESPEAK_CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"eSpeak NG failed to synthesise {text!r} with voice {voice!r} (error {err})")
            out = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            self._chunks = []
            return out
