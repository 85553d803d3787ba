"""A text a person corrects (``text_edits``): a machine transcript shown with its audio, or a machine translation
shown with its source sentence; the labeler's corrected text is the answer (docs/speech.md, "The text_edits kind").
"""
