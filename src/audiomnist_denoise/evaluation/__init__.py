"""The denoising methods compared, spectrogram MSE tables and speech-quality metrics."""
