"""The corpus: AudioMNIST layout and metadata, the eSpeak NG corpus, download, noise mixing, splits."""
