"""The ML side: loading models, generating answers, fine-tuning. torch, transformers and peft are
imported at the top of these modules; nothing here imports Django. Only generation.worker (and the
benchmarks) import this package; generation.configs holds the settings both sides share."""
