"""Habla ingest: audio chunks in, speech windows and utterances out.

``adapters`` decodes what the phone sends (PCM16 or a WebM/Opus MediaRecorder stream)
to 16 kHz mono PCM and wraps Silero VAD; ``domain`` is the pure segmenter state
machine; ``handlers`` keeps one decoder, detector and segmenter per session and maps
the segmenter's outputs to contract events.
"""
