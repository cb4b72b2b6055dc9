"""What researchers read: campaign reports (statistics, building, text, charts), exports, and the
fine-tuning run pages. No models of its own; reads annotations and generation."""
