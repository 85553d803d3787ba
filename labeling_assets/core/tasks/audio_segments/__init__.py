"""The ``audio_segments`` kind: time regions with a label (``vi``, ``en``, ``noise``) on an audio item."""
