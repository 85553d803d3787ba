"""Charts and the QA report page (matplotlib, headless)."""
