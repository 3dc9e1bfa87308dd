"""The training clips' store: clips written one at a time, read back a batch at a time, padded per batch."""

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import small_features, tone, train_params

from audiomnist_denoise.data.corpus import find_clips
from audiomnist_denoise.data.splits import assign_splits
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.training.audio_task import AudioTask, store_audio_clips
from audiomnist_denoise.training.store import ClipStore, ClipStoreWriter

FEATURES = small_features()
RATE = FEATURES.sample_rate


def clips_of(lengths: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(length).astype(np.float32) for length in lengths]


@pytest.mark.parametrize("on_disk", [True, False])
def test_a_store_gives_back_each_clip_and_pads_a_batch_to_its_own_longest(on_disk, tmp_path):
    audio = clips_of([300, 1000, 50, 700])
    if on_disk:
        writer = ClipStoreWriter(tmp_path / "clips.f32")
        for clip in audio:
            writer.append(clip)
        store = writer.finish()
        assert (tmp_path / "clips.f32").stat().st_size == 4 * sum(map(len, audio))  # no padding on disk
    else:
        store = ClipStore.in_memory(audio)
    assert len(store) == 4 and store.lengths.tolist() == [300, 1000, 50, 700]
    for row, clip in enumerate(audio):
        assert np.array_equal(store.clip(row), clip)
    batch = store.padded(torch.tensor([3, 2, 0]))
    assert batch.shape == (3, 700) and batch.dtype == torch.float32
    for i, row in enumerate([3, 2, 0]):
        assert np.array_equal(batch[i, : len(audio[row])].numpy(), audio[row])
        assert torch.all(batch[i, len(audio[row]) :] == 0)
    share = store.subset(slice(1, None, 2))  # a rank's share: rows 1 and 3
    assert np.array_equal(share.clip(1), audio[3]) and share.padded([0, 1]).shape == (2, 1000)


def test_the_digest_follows_the_samples_and_their_order(tmp_path):
    audio = clips_of([30, 40, 50])
    store = ClipStore.in_memory(audio)
    writer = ClipStoreWriter(tmp_path / "clips.f32")
    for clip in audio:
        writer.append(clip)
    assert torch.equal(store.digest(), writer.finish().digest())  # where the clips lie does not matter
    assert not torch.equal(store.digest(), store.subset([1, 0, 2]).digest())
    changed = [clip.copy() for clip in audio]
    changed[2][7] += 1e-3
    assert not torch.equal(store.digest(), ClipStore.in_memory(changed).digest())
    # the same samples cut into other clips are other clips
    assert not torch.equal(store.digest(), ClipStore.in_memory([np.concatenate(audio[:2]), audio[2]]).digest())


def test_a_store_cut_short_on_disk_is_reported_not_read_as_silence(tmp_path):
    writer = ClipStoreWriter(tmp_path / "clips.f32")
    for clip in clips_of([100, 100]):
        writer.append(clip)
    store = writer.finish()
    with open(tmp_path / "clips.f32", "r+b") as file:
        file.truncate(4 * 150)
    with pytest.raises(OSError, match=r"clips.f32: ends inside clip 1"):
        store.clip(1)


def corpus(root, lengths: dict[str, list[float]]):
    """Clean and noisy wavs at 16 kHz: speaker -> each digit's clip length in seconds."""
    for speaker, seconds in lengths.items():
        for digit, length in enumerate(seconds):
            audio = tone(length, RATE, 200 + 30 * digit, digit)
            for folder, signal in (("raw", audio), ("noisy", audio + 0.01)):
                (root / folder / speaker).mkdir(parents=True, exist_ok=True)
                sf.write(root / folder / speaker / f"{digit}_{speaker}_0.wav", signal, RATE, subtype="FLOAT")


def test_stored_splits_hold_the_split_files_clips_in_its_order_without_padding(tmp_path):
    corpus(tmp_path, {"01": [0.1, 0.3, 0.2], "02": [0.25, 0.15, 0.05], "03": [0.1, 0.1, 0.1]})
    split = assign_splits(find_clips(tmp_path / "raw"), ["03"], 0.5, "speaker", 0)
    split.to_csv(tmp_path / "split.csv", index=False)
    (tmp_path / "store").mkdir()
    stored = store_audio_clips(
        tmp_path / "raw", tmp_path / "noisy", tmp_path / "split.csv", ("train", "val"), RATE, tmp_path / "store"
    )
    for name, clips in stored.items():
        rows = split[split.split == name]
        assert [clip.id for clip in clips.clips] == rows.clip_id.tolist()
        for row, clip in enumerate(clips.clips):
            clean = sf.read(tmp_path / "raw" / clip.path, dtype="float32")[0]
            assert np.array_equal(clips.clean.clip(row), clean)
            assert np.array_equal(clips.noisy.clip(row), sf.read(tmp_path / "noisy" / clip.path, dtype="float32")[0])
    files = sorted(tmp_path.glob("store/*/*.f32"))
    assert [f.name for f in files] == ["train-clean.f32", "train-noisy.f32", "val-clean.f32", "val-noisy.f32"]
    total = sum(len(sf.read(tmp_path / "raw" / clip.path)[0]) for clips in stored.values() for clip in clips.clips)
    assert sum(f.stat().st_size for f in files) == 2 * 4 * total  # each clip at its own length
    # a task's batch is the clips padded to the batch's own longest
    network = SpectralDenoiser(FEATURES, [4, 8], "mask", "dataset", "sigmoid")
    task = AudioTask(stored["train"], network, train_params(), RATE)
    clean, noisy, lengths = task.batch(torch.tensor([0, 1]), 0, torch.device("cpu"), "fp32")
    assert clean.shape[-1] == int(lengths.max()) == noisy.shape[-1]
    assert torch.equal(clean, stored["train"].clean.padded([0, 1])) and torch.equal(
        noisy[0, : lengths[0]], torch.from_numpy(stored["train"].noisy.clip(0))
    )


def test_a_noisy_copy_of_another_length_names_its_file(tmp_path):
    corpus(tmp_path, {"01": [0.1, 0.2], "02": [0.1, 0.2], "03": [0.1, 0.2]})
    sf.write(tmp_path / "noisy" / "01" / "1_01_0.wav", np.zeros(100, np.float32), RATE, subtype="FLOAT")
    assign_splits(find_clips(tmp_path / "raw"), ["03"], 0.5, "speaker", 0).to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(PipelineError, match=r"noisy/01/1_01_0.wav: does not match its clean clip"):
        store_audio_clips(tmp_path / "raw", tmp_path / "noisy", tmp_path / "split.csv", ("train",), RATE, tmp_path)
