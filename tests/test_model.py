"""The U-Net, its initialisation, its checkpoint, and a few training steps."""

import numpy as np
import pytest
import torch
from conftest import blob_pairs, mean_loss, new_unet, train_params

from audiomnist_denoise.devices import autocast, to_device
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.model.checkpoint import load_checkpoint, save_checkpoint
from audiomnist_denoise.model.unet import UNet, initialise, predict
from audiomnist_denoise.training.loop import Trainer
from audiomnist_denoise.training.tasks import identity_loss

CPU = torch.device("cpu")


@pytest.mark.parametrize("channels, size", [([32, 64, 128], 112), ([8, 16], 32), ([4, 8, 16, 32], 64)])
def test_output_has_the_input_shape(channels, size):
    model = new_unet(channels, "kaiming", "sigmoid", 0)
    output = model(torch.rand(2, 1, size, size))
    assert output.shape == (2, 1, size, size)
    assert 0 <= output.min() and output.max() <= 1


def test_the_studys_architecture():
    model = new_unet([32, 64, 128], "kaiming", "linear", 0)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in model.encoders[0] if isinstance(m, torch.nn.Conv2d)] == [32, 32]
    assert [m.out_channels for m in model.upsamplers] == [64, 32]
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 1
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 2 * (3 + 2)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 1  # shared, used twice


def train(model, train_task, val_task, params, device, log, progress=None):
    """A run from the start without resume points."""
    return Trainer(model, train_task, val_task, params, device).run(log, progress)


def _same_weights(first: UNet, second: UNet) -> bool:
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    return all(torch.equal(a, b) for a, b in pairs)


def _conv_weights(model: UNet) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)][:-1]  # 3x3 convs before the head


def test_initialisations_follow_their_scheme():
    """Kaiming (fan-out, ReLU) gives std sqrt(2 / fan_out); Xavier uniform std sqrt(2 / (fan_in + fan_out))."""
    kaiming, xavier, default = (new_unet([16, 32], init, "sigmoid", 0) for init in ("kaiming", "xavier", "torch"))
    for weight in _conv_weights(kaiming):
        fan_out = weight.shape[0] * weight[0, 0].numel()
        assert weight.std().item() == pytest.approx(np.sqrt(2 / fan_out), rel=0.15)
    for weight in _conv_weights(xavier):
        fan_in, fan_out = weight.shape[1] * weight[0, 0].numel(), weight.shape[0] * weight[0, 0].numel()
        assert weight.std().item() == pytest.approx(np.sqrt(2 / (fan_in + fan_out)), rel=0.15)
    # PyTorch's default (kaiming uniform, a=sqrt(5)) is std 1 / sqrt(3 fan_in): unlike either above.
    for weight in _conv_weights(default):
        fan_in = weight.shape[1] * weight[0, 0].numel()
        assert weight.std().item() == pytest.approx(1 / np.sqrt(3 * fan_in), rel=0.15)


def test_same_seed_same_weights_and_bad_options_are_named():
    first, second = new_unet([8, 16], "xavier", "sigmoid", 3), new_unet([8, 16], "xavier", "sigmoid", 3)
    assert _same_weights(first, second)
    with pytest.raises(PipelineError, match="model.init"):
        initialise(first, "orthogonal")
    with pytest.raises(PipelineError, match="model.output"):
        UNet([8, 16], "tanh")


def test_training_steps_reduce_the_loss_and_log_every_step():
    data, val = blob_pairs(16), blob_pairs(8, seed=1)
    model = new_unet([4, 8], "kaiming", "sigmoid", 0)
    logged = []
    model, result = train(model, data, val, train_params(), CPU, lambda step, values: logged.append((step, values)))
    assert result.steps == 16 and [step for step, _ in logged] == list(range(1, 17))
    assert [step for step, values in logged if "val/loss" in values] == [4, 8, 12, 16]
    assert result.final_train_loss < 0.5 * logged[0][1]["train/loss"]
    assert mean_loss(model, val, 8, CPU) == pytest.approx(result.best_val_loss)  # the best weights are returned
    assert result.identity_val_loss == pytest.approx(identity_loss(val))


def test_training_is_deterministic_on_cpu():
    def run():
        model = new_unet([4, 8], "kaiming", "sigmoid", 0)
        return train(model, blob_pairs(16), blob_pairs(8, seed=1), train_params(epochs=2), CPU, lambda *_: None)[0]

    first, second = run(), run()
    assert _same_weights(first, second)


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    model = new_unet([4, 8], "kaiming", "linear", 0)
    config = {"model": {"channels": [4, 8], "init": "kaiming", "output": "linear"}, "features": {"n_mels": 16}}
    save_checkpoint(tmp_path / "models" / "unet.pt", model, config)
    raw = torch.load(tmp_path / "models" / "unet.pt", weights_only=True)
    assert raw["config"] == config
    loaded, loaded_config = load_checkpoint(tmp_path / "models" / "unet.pt")
    images = np.random.default_rng(0).random((3, 16, 16)).astype(np.float16)
    np.testing.assert_allclose(predict(loaded, images, 2, CPU), predict(model.eval(), images, 3, CPU), atol=1e-6)
    assert loaded_config == config and not loaded.training


def test_predict_in_channels_last_matches_the_plain_forward_pass():
    model = new_unet([8, 16], "kaiming", "sigmoid", 0).eval()
    images = np.random.default_rng(0).random((5, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(images).unsqueeze(1)).squeeze(1).numpy()
    np.testing.assert_allclose(predict(model, images, 2, CPU), expected, atol=1e-5)


def test_load_checkpoint_refuses_what_is_not_one(tmp_path):
    with pytest.raises(PipelineError, match="no such model file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(PipelineError, match="text.pt: not a readable model checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(PipelineError, match="other.pt: not an audiomnist-denoise U-Net checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


# --- precision


def test_bf16_loss_matches_fp32_on_a_fixed_batch():
    """Autocast changes the arithmetic, not the model: same weights, same batch, nearly the same loss."""
    model = new_unet([8, 16], "kaiming", "sigmoid", 0).to(memory_format=torch.channels_last)
    batch = blob_pairs(8, size=32)
    losses = {}
    for precision in ("fp32", "bf16"):
        with autocast(precision, CPU):
            output = model(to_device(batch.noisy, CPU, "bf16"))
        assert output.dtype == torch.float32  # the output layer runs in fp32 under autocast too
        losses[precision] = torch.nn.functional.mse_loss(output.float(), batch.clean).item()
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)
    assert losses["bf16"] != losses["fp32"]  # the convolutions did run in bf16


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_keeps_fp32_weights(precision):
    data, val = blob_pairs(16), blob_pairs(8, seed=1)
    logged = []
    model, result = train(
        new_unet([4, 8], "kaiming", "sigmoid", 0),
        data,
        val,
        train_params(precision=precision),
        CPU,
        lambda step, values: logged.append(values["train/loss"]),
    )
    assert result.precision == precision
    assert result.final_train_loss < 0.5 * logged[0]
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())
    assert all(parameter.is_contiguous() for parameter in model.parameters())  # saved in the plain layout
    fp32 = train(new_unet([4, 8], "kaiming", "sigmoid", 0), data, val, train_params(), CPU, lambda *_: None)[1]
    assert result.best_val_loss == pytest.approx(fp32.best_val_loss, rel=0.1)


def test_mixed_precision_training_is_deterministic_on_cpu():
    def run():
        model = new_unet([4, 8], "kaiming", "sigmoid", 0)
        return train(
            model, blob_pairs(16), blob_pairs(8, seed=1), train_params(epochs=2, precision="bf16"), CPU, lambda *_: None
        )[0]

    assert _same_weights(run(), run())
