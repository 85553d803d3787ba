"""Speech (issue 35), the foundation the audio kinds build on: time regions with a label and their consensus,
RTTM, transcript consensus (ROVER and a labeler-aware ROVER), and synthesised demo data. See docs/speech.md."""
