"""Streamed test sets (robstudy.sources) on small datasets written in the real formats: an ImageNet-style JPEG tree with
a class-index file, ImageNetV2's numbered folders, CIFAR python batches as Python 2 pickled them, CIFAR-10.1 and
CIFAR-10-C .npy files, IDX files. Pixels are checked against direct PIL/numpy reads; batches against batch size and
workers; fingerprints against content changes, touched files and the manifest cache; bad specs against clear errors
raised before anything is read or written."""
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robstudy import sources
from robstudy.sources import (CIFAR10_CLASSES, Preprocess, TensorSource, as_float_images, image_source, read_class_index,
                              source_keys, split_source)

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]   # tench, goldfish, great white shark, tiger shark
NAMES = ["tench", "goldfish", "great white shark", "tiger shark"]
SIZES = [(40, 52), (52, 40), (45, 45)]                          # (height, width)


def age(paths, seconds=3600):
    "Set the files' mtimes `seconds` in the past (a hash taken now is then trusted by the manifest cache)."
    t = time.time() - seconds
    for p in paths: os.utime(p, (t, t))


def collect(batches):
    xs, ys, ids = zip(*batches)
    return torch.cat(xs), torch.cat(ys), torch.cat(ids)


def rgb(path):
    with Image.open(path) as im: return im.convert("RGB")


@pytest.fixture
def jpeg_tree(tmp_path):
    "An ImageNet-style val folder: root/<wnid>/<wnid>_<k>.JPEG in three sizes, a JSON class index (imagenet_class_index.json)."
    rng = np.random.default_rng(0)
    root = tmp_path / "val"
    paths = []
    for c, w in enumerate(reversed(WNIDS)):              # written in another order than the index's
        (root / w).mkdir(parents=True)
        for k in range(3):
            h, wd = SIZES[k]
            yy, xx = np.mgrid[0:h, 0:wd]
            img = np.stack([(xx * 3 + c * 40) % 256, (yy * 4 + k * 50) % 256, rng.integers(0, 256, (h, wd))], -1).astype(np.uint8)
            p = root / w / f"{w}_{k:05d}.JPEG"
            Image.fromarray(img).save(p, quality=92)
            paths.append(p)
    (root / WNIDS[0] / "README.txt").write_text("not an image")            # skipped: not an image extension
    Image.new("L", (45, 45), 128).save(root / WNIDS[0] / f"{WNIDS[0]}_00009.png")   # a grey PNG: decoded to RGB
    paths.append(root / WNIDS[0] / f"{WNIDS[0]}_00009.png")
    index = tmp_path / "imagenet_class_index.json"
    index.write_text(json.dumps({str(i): [w, n] for i, (w, n) in enumerate(zip(WNIDS, NAMES))}))
    age(paths)
    return root, index, paths


def test_image_folder_labels_classes_and_pixels(jpeg_tree, tmp_path):
    root, index, _ = jpeg_tree
    src = image_source({"kind": "image_folder", "root": str(root), "class_index": str(index)}, cache_dir=tmp_path / "cache")
    assert src.classes == NAMES and len(src) == 13 and src.name == "val"
    assert src.files[:4] == [f"{WNIDS[0]}/{WNIDS[0]}_0000{k}.JPEG" for k in range(3)] + [f"{WNIDS[0]}/{WNIDS[0]}_00009.png"]
    assert src.labels().tolist() == [0] * 4 + [1] * 3 + [2] * 3 + [3] * 3
    # natively sized images, one a batch: exactly PIL's decode
    for x, y, idx in src.batches(1):
        i = int(idx)
        assert x.dtype == torch.uint8 and x.shape[:2] == (1, 3) and int(y) == src.labels()[i]
        assert np.array_equal(x[0].permute(1, 2, 0).numpy(), np.asarray(rgb(root / src.files[i])))
    # resize + crop, against torchvision's arithmetic written out with PIL
    for interp, flt in [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC), ("nearest", Image.NEAREST)]:
        x, y, idx = collect(src.batches(5, Preprocess(size=37, crop=32, interpolation=interp)))
        assert x.shape == (13, 3, 32, 32)
        for i, f in enumerate(src.files):
            im = rgb(root / f)
            w, h = im.size
            ow, oh = (37, int(37 * h / w)) if w <= h else (int(37 * w / h), 37)
            im = im.resize((ow, oh), flt) if (ow, oh) != (w, h) else im
            left, top = int(round((ow - 32) / 2.0)), int(round((oh - 32) / 2.0))
            assert np.array_equal(x[i].permute(1, 2, 0).numpy(), np.asarray(im.crop((left, top, left + 32, top + 32)))), (interp, f)
    # grey
    x, _, _ = collect(src.batches(4, Preprocess(size=32, crop=32, channels=1)))
    assert x.shape == (13, 1, 32, 32)


def test_preprocess_equals_torchvision_where_installed(jpeg_tree):
    "Resize(size) + CenterCrop(crop) of torchvision on the same PIL images (skipped where torchvision does not import)."
    try:
        import torchvision.transforms as T
    except Exception as e:      # absent, or a build for another torch (its import fails with a RuntimeError)
        pytest.skip(f"torchvision does not import here ({type(e).__name__}: {e})")
    root, _, paths = jpeg_tree
    for size, crop, interp in [(37, 32, "bilinear"), (50, 31, "bicubic"), (30, 40, "nearest"), (None, 41, "bilinear"), (45, None, "bicubic")]:
        mode = getattr(T.InterpolationMode, interp.upper())
        tv = T.Compose([t for t in (size and T.Resize(size, interpolation=mode), crop and T.CenterCrop(crop)) if t])
        ours = Preprocess(size=size, crop=crop, interpolation=interp)
        for p in paths:
            im = rgb(p)
            assert np.array_equal(ours.pil(im), np.asarray(tv(im))), (size, crop, interp, p.name)


def test_class_index_forms_and_disagreements(jpeg_tree, tmp_path):
    root, index, _ = jpeg_tree
    loc = tmp_path / "LOC_synset_mapping.txt"
    loc.write_text("".join(f"{w} {n}, more words\n" for w, n in zip(WNIDS, NAMES)))
    assert read_class_index(loc)[1] == ("n01443537", "goldfish, more words")
    (tmp_path / "wnids.txt").write_text("\n".join(WNIDS))
    src = image_source({"kind": "image_folder", "root": str(root), "class_index": str(tmp_path / "wnids.txt"), "classes": NAMES},
                       cache_dir=tmp_path / "cache")
    assert src.classes == NAMES and src.labels().tolist()[:5] == [0, 0, 0, 0, 1]
    # a class-index file relative to the root (inside it)
    shutil.copy(index, root / "classes.json")
    assert image_source({"kind": "image_folder", "root": str(root), "class_index": "classes.json"}).classes == NAMES
    # without an index: sorted folders
    src = image_source({"kind": "image_folder", "root": str(root)})
    assert src.classes == sorted(WNIDS)
    bad = {"kind": "image_folder", "root": str(root), "class_index": str(index), "classes": ["tench", "carp", "shark", "x"]}
    with pytest.raises(ValueError, match="the class names disagree with the class-index file .*label 1 is 'carp' in classes but 'goldfish'"):
        image_source(bad)
    with pytest.raises(ValueError, match="3 names for 4 classes"):
        image_source({**bad, "classes": NAMES[:3]})
    more = tmp_path / "more.txt"
    more.write_text("\n".join(WNIDS + ["n01494475", "n01496331"]))
    with pytest.raises(FileNotFoundError, match=r"names 2 folder\(s\) absent from .*\['n01494475', 'n01496331'\]; expected one folder per class"):
        image_source({"kind": "image_folder", "root": str(root), "class_index": str(more)})
    fewer = tmp_path / "fewer.txt"
    fewer.write_text("\n".join(WNIDS[:3]))
    with pytest.raises(ValueError, match=r"1 folder\(s\) in .* are not in the class-index file .*\['n01491361'\]"):
        image_source({"kind": "image_folder", "root": str(root), "class_index": str(fewer)})


def test_same_batches_any_batch_size_and_workers(jpeg_tree, tmp_path):
    root, index, _ = jpeg_tree
    src = image_source({"kind": "image_folder", "root": str(root), "class_index": str(index)}, cache_dir=tmp_path / "cache")
    prep = Preprocess(size=32, crop=28)
    ref = collect(src.batches(13, prep))
    assert ref[2].tolist() == list(range(13))
    for bs in (1, 3, 5, 13, 100):
        for w in (0, 2):
            got = list(src.batches(bs, prep, workers=w))
            assert all(len(x) <= bs for x, _, _ in got)
            for a, b in zip(collect(got), ref): assert torch.equal(a, b), (bs, w)
    sub = [12, 3, 3, 7]
    x, y, idx = collect(src.batches(3, prep, workers=2, indices=torch.tensor(sub)))
    assert idx.tolist() == sub and torch.equal(x, ref[0][sub]) and torch.equal(y, ref[1][sub])
    # a shift keyed by the global index is the same per batch as on the whole set
    from robstudy.shifts import get_shift
    whole = get_shift("impulse_noise")(as_float_images(ref[0]), 3, seed=5, index=ref[2])
    parts = torch.cat([get_shift("impulse_noise")(as_float_images(x), 3, seed=5, index=i) for x, _, i in src.batches(4, prep, workers=2)])
    assert torch.equal(parts, whole)


def test_fingerprint_content_mtime_and_cache(jpeg_tree, tmp_path, monkeypatch):
    root, index, paths = jpeg_tree
    cache = tmp_path / "cache"
    spec = {"kind": "image_folder", "root": str(root), "class_index": str(index)}
    hashed = []
    real = sources.file_sha256
    monkeypatch.setattr(sources, "file_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    fp = image_source(spec, cache_dir=cache).fingerprint()
    assert len(hashed) == 13
    assert (cache / "manifests").is_dir() and len(list((cache / "manifests").iterdir())) == 1

    # a re-run reads no image: neither hashed nor decoded (both would raise)
    def refuse(*a, **k): raise AssertionError("an image was read on a re-run")
    monkeypatch.setattr(sources, "file_sha256", refuse)
    monkeypatch.setattr(Image, "open", refuse)
    again = image_source(spec, cache_dir=cache)
    assert again.fingerprint() == fp and len(again) == 13 and again.labels().sum() == 3 + 6 + 9
    m = again.manifest()
    assert list(m.columns) == ["path", "size", "mtime_ns", "sha256"] and len(m) == 13
    assert m.sha256.iloc[0] == real(root / again.files[0])
    monkeypatch.undo()

    hashed.clear()
    monkeypatch.setattr(sources, "file_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    # touched (mtime only): hashed again, same bytes, same fingerprint
    os.utime(paths[0], (time.time() - 60, time.time() - 60))
    assert image_source(spec, cache_dir=cache).fingerprint() == fp and hashed == [paths[0].name]
    # new content (same size, mtime set back to the old value is NOT detectable; a real write changes the mtime)
    hashed.clear()
    data = bytearray(paths[1].read_bytes())
    data[-3] ^= 0xFF
    paths[1].write_bytes(bytes(data))
    age([paths[1]], 30)
    fp2 = image_source(spec, cache_dir=cache).fingerprint()
    assert fp2 != fp and hashed == [paths[1].name]
    # the same files elsewhere are the same test set (paths and root are not hashed); the labelling is
    shutil.copytree(root, tmp_path / "elsewhere")
    assert image_source({**spec, "root": str(tmp_path / "elsewhere")}, cache_dir=cache).fingerprint() == fp2
    assert image_source({"kind": "image_folder", "root": str(root)}, cache_dir=cache).fingerprint() != fp2
    # a damaged cache file is ignored and rewritten
    for f in (cache / "manifests").iterdir(): f.write_text("{\"files\": {\"x\": [1, 2")
    hashed.clear()
    assert image_source(spec, cache_dir=cache).fingerprint() == fp2 and len(hashed) == 13


def test_recently_modified_files_are_hashed_again(tmp_path, monkeypatch):
    "A hash taken within 2 s of a file's modification is not trusted (a coarse mtime could hide a second write)."
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(root / "a" / "x.png")
    hashed = []
    real = sources.file_sha256
    monkeypatch.setattr(sources, "file_sha256", lambda p: hashed.append(p) or real(p))
    for _ in range(2): image_source({"kind": "image_folder", "root": str(root)}, cache_dir=tmp_path / "c").fingerprint()
    assert len(hashed) == 2
    age([root / "a" / "x.png"])
    for _ in range(2): image_source({"kind": "image_folder", "root": str(root)}, cache_dir=tmp_path / "c").fingerprint()
    assert len(hashed) == 3


def test_imagenetv2_numbered_folders(tmp_path):
    root = tmp_path / "imagenetv2-matched-frequency-format-val"
    rng = np.random.default_rng(2)
    imgs = {}
    for label in (0, 1, 2, 10, 11):
        for j in range(2):
            h = f"{rng.integers(1 << 40):x}"
            a = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(root / str(label) / f"{h}.jpeg")
            imgs[f"{label}/{h}.jpeg"] = label
    for label in range(3, 10): (root / str(label)).mkdir()
    src = image_source({"kind": "imagenetv2", "root": str(root), "classes": [f"c{i}" for i in range(12)]})
    assert len(src) == 10 and src.labels().tolist() == [0, 0, 1, 1, 2, 2, 10, 10, 11, 11]
    assert src.files == sorted(imgs, key=lambda f: (imgs[f], f))
    x, y, idx = collect(src.batches(3, workers=2))
    for i, f in enumerate(src.files):
        assert np.array_equal(x[i].permute(1, 2, 0).numpy(), np.asarray(rgb(root / f)))
    with pytest.raises(FileNotFoundError, match=r"988 numbered folder\(s\) absent from .*expected folders 0..999"):
        image_source({"kind": "imagenetv2", "root": str(root)})
    with pytest.raises(ValueError, match=r"folders \[10, 11\] in .* exceed the 10 classes"):
        image_source({"kind": "imagenetv2", "root": str(root), "classes": [str(i) for i in range(10)]})
    (root / "n01440764").mkdir()
    with pytest.raises(ValueError, match=r"folders \['n01440764'\] in .* are not class numbers"):
        image_source({"kind": "imagenetv2", "root": str(root), "classes": [f"c{i}" for i in range(12)]})


class Py2Pickler(pickle._Pickler):
    "Pickles str and bytes as Python 2's byte strings, as CIFAR's python batches were written (cPickle, protocol 2)."
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str(self, obj):
        b = obj.encode("latin-1") if isinstance(obj, str) else obj
        self.write((pickle.SHORT_BINSTRING + bytes([len(b)]) if len(b) < 256 else pickle.BINSTRING + struct.pack("<i", len(b))) + b)
        self.memoize(obj)
    dispatch[str] = _save_str
    dispatch[bytes] = _save_str


def write_py2_pickle(path, obj):
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    Path(path).write_bytes(f.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


def test_cifar_python_batches(tmp_path):
    rng = np.random.default_rng(3)
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    test = rng.integers(0, 256, (7, 3072), dtype=np.uint8)
    write_py2_pickle(c10 / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": [int(v) for v in rng.integers(0, 10, 7)],
                                          "data": test, "filenames": [f"t_{i}.png" for i in range(7)]})
    train = [rng.integers(0, 256, (3, 3072), dtype=np.uint8) for _ in range(5)]
    for i, d in enumerate(train):
        write_py2_pickle(c10 / f"data_batch_{i + 1}", {"batch_label": f"training batch {i + 1} of 5", "labels": [i, i, 9], "data": d,
                                                       "filenames": ["a", "b", "c"]})
    write_py2_pickle(c10 / "batches.meta", {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": 10000, "num_vis": 3072})
    raw = (c10 / "test_batch").read_bytes()
    assert raw[:2] == b"\x80\x02" and b"cnumpy.core.multiarray\n_reconstruct" in raw and b"U\x04data" in raw
    src = image_source({"kind": "cifar", "root": str(c10)})
    assert (src.name, src.classes, len(src)) == ("cifar10", CIFAR10_CLASSES, 7)
    x, y, idx = collect(src.batches(3, workers=2))
    assert torch.equal(x, torch.from_numpy(test.reshape(7, 3, 32, 32)))
    x, _, _ = collect(src.batches(2, Preprocess(size=16)))
    assert np.array_equal(x[5].permute(1, 2, 0).numpy(),
                          np.asarray(Image.fromarray(test[5].reshape(3, 32, 32).transpose(1, 2, 0)).resize((16, 16), Image.BILINEAR)))
    tr = image_source({"kind": "cifar", "root": str(c10), "split": "train"})
    assert len(tr) == 15 and tr.labels().tolist()[:6] == [0, 0, 9, 1, 1, 9]
    assert torch.equal(collect(tr.batches(4))[0], torch.from_numpy(np.concatenate(train).reshape(15, 3, 32, 32)))
    # CIFAR-100: fine labels, names from `meta`
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    write_py2_pickle(c100 / "test", {"batch_label": "testing batch 1 of 1", "fine_labels": [4, 99], "coarse_labels": [0, 1],
                                     "data": test[:2], "filenames": ["a", "b"]})
    fine = [f"class{i}" for i in range(100)]
    write_py2_pickle(c100 / "meta", {"fine_label_names": fine, "coarse_label_names": [f"super{i}" for i in range(20)]})
    s100 = image_source({"kind": "cifar", "root": str(c100)})
    assert (s100.name, s100.classes, s100.labels().tolist()) == ("cifar100", fine, [4, 99])
    with pytest.raises(ValueError, match="the class names disagree with batches.meta"):
        image_source({"kind": "cifar", "root": str(c10), "classes": [f"c{i}" for i in range(10)]})
    with pytest.raises(FileNotFoundError, match="cannot tell the variant .* expected CIFAR-10's \\['test_batch'\\]"):
        image_source({"kind": "cifar", "root": str(tmp_path)})
    # a batch naming any other global is refused, not run
    class Evil:
        def __reduce__(self): return (os.system, ("echo pwned",))
    (c100 / "test").write_bytes(pickle.dumps({"data": Evil(), "fine_labels": [0]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        image_source({"kind": "cifar", "root": str(c100)})


def test_cifar10_1_and_cifar10_c_npy(tmp_path):
    rng = np.random.default_rng(4)
    c101 = tmp_path / "CIFAR-10.1" / "datasets"
    c101.mkdir(parents=True)
    x101 = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    np.save(c101 / "cifar10.1_v6_data.npy", x101)
    np.save(c101 / "cifar10.1_v6_labels.npy", np.arange(9, dtype=np.int64) % 10)
    s = image_source({"kind": "cifar10_1", "root": str(c101)})
    assert (s.name, s.classes, len(s), s.labels().tolist()) == ("cifar10_1", CIFAR10_CLASSES, 9, list(range(9)))
    assert torch.equal(collect(s.batches(4, workers=2))[0], torch.from_numpy(x101).permute(0, 3, 1, 2))
    with pytest.raises(FileNotFoundError, match="cifar10.1_v4_data.npy' not found; expected CIFAR-10.1's cifar10.1_v4_data.npy and"):
        image_source({"kind": "cifar10_1", "root": str(c101), "version": "v4"})

    cc = tmp_path / "CIFAR-10-C"
    cc.mkdir()
    xs = {c: rng.integers(0, 256, (15, 32, 32, 3), dtype=np.uint8) for c in ("gaussian_noise", "fog")}
    for c, a in xs.items(): np.save(cc / f"{c}.npy", a)
    np.save(cc / "labels.npy", np.tile(np.arange(3, dtype=np.uint8), 5))
    fps = set()
    for sev in range(1, 6):
        s = image_source({"kind": "cifar10_c", "root": str(cc), "corruption": "fog", "severity": sev})
        x, y, idx = collect(s.batches(2, workers=2 if sev == 3 else 0))
        assert torch.equal(x, torch.from_numpy(xs["fog"][(sev - 1) * 3:sev * 3]).permute(0, 3, 1, 2))
        assert idx.tolist() == [0, 1, 2] and y.tolist() == [0, 1, 2] and s.options == {"corruption": "fog", "severity": sev}
        fps.add(s.fingerprint())
    assert len(fps) == 5
    every = image_source({"kind": "cifar10_c", "root": str(cc), "corruption": "gaussian_noise"})
    assert len(every) == 15 and every.fingerprint() not in fps
    with pytest.raises(FileNotFoundError, match=r"snow.npy not found in .*; corruptions found there: \['fog', 'gaussian_noise'\]"):
        image_source({"kind": "cifar10_c", "root": str(cc), "corruption": "snow", "severity": 1})


def test_npy_is_memory_mapped_and_not_copied_to_workers(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (64, 3, 40, 40), dtype=np.uint8)        # 300 KB, N×C×H×W
    np.save(tmp_path / "x.npy", a)
    np.save(tmp_path / "y.npy", np.arange(64) % 4)
    s = image_source({"kind": "npy", "root": str(tmp_path), "images": "x.npy", "labels": "y.npy", "layout": "NCHW",
                      "classes": ["a", "b", "c", "d"]})
    assert isinstance(s._images(), np.memmap)
    assert len(pickle.dumps(s)) < 20_000                             # what a spawned worker receives: no pixels
    assert torch.equal(collect(s.batches(10, workers=2))[0], torch.from_numpy(a))
    x, _, _ = collect(s.batches(10, Preprocess(size=20, crop=16, channels=1)))
    by_hand = Image.fromarray(a[7].transpose(1, 2, 0)).convert("L").resize((20, 20), Image.BILINEAR).crop((2, 2, 18, 18))
    assert np.array_equal(x[7, 0].numpy(), np.asarray(by_hand))
    np.save(tmp_path / "f.npy", a.astype(np.float32))
    with pytest.raises(ValueError, match="holds float32 values; expected uint8 images"):
        image_source({"kind": "npy", "root": str(tmp_path), "images": "f.npy", "labels": "y.npy"})
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="is not a plain .npy array"):
        image_source({"kind": "npy", "root": str(tmp_path), "images": "obj.npy", "labels": "y.npy"})
    with pytest.raises(ValueError, match="has shape \\(64, 3, 40, 40\\); expected images N×H×W×C"):
        image_source({"kind": "npy", "root": str(tmp_path), "images": "x.npy", "labels": "y.npy"})


def test_idx_files(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (11, 28, 28), dtype=np.uint8)
    y = (np.arange(11) % 10).astype(np.uint8)
    def idx(a): return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx(x))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(y)))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(x[:4])))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx(y[:4]))
    s = image_source({"kind": "idx", "root": str(tmp_path), "classes": [str(i) for i in range(10)]})
    assert isinstance(s._images(), np.memmap) and s.labels().tolist() == y.tolist()
    assert torch.equal(collect(s.batches(4, workers=2))[0], torch.from_numpy(x)[:, None])
    tr = image_source({"kind": "idx", "root": str(tmp_path), "split": "train"})
    assert torch.equal(collect(tr.batches(3))[0], torch.from_numpy(x[:4])[:, None]) and tr.classes == ["0", "1", "2", "3"]
    (tmp_path / "short").write_bytes(idx(x)[:-5])
    with pytest.raises(ValueError, match="header says shape \\(11, 28, 28\\) but the file has"):
        image_source({"kind": "idx", "root": str(tmp_path), "images": "short"})


def test_tensor_source_float_and_uint8():
    from robstudy.data import load_digits_split
    ds = load_digits_split(seed=0)
    s = split_source(ds)
    x, y, idx = collect(s.batches(97, workers=2))
    assert x.dtype == torch.float32 and torch.equal(x, ds.x_test) and torch.equal(y, ds.y_test)
    u8 = (ds.x_test * 255).round().to(torch.uint8)
    t = TensorSource(u8, ds.y_test, ds.classes, "digits_u8")
    xr, _, _ = collect(t.batches(50, Preprocess(size=16, channels=3)))
    by_hand = Image.fromarray(u8[3, 0].numpy()).convert("RGB").resize((16, 16), Image.BILINEAR)
    assert np.array_equal(xr[3].permute(1, 2, 0).numpy(), np.asarray(by_hand))
    # float through torch: the sizes of PIL's route, values within a grey level or so
    xf, _, _ = collect(s.batches(50, Preprocess(size=16, channels=3)))
    assert xf.shape == xr.shape and (xf * 255 - xr.float()).abs().mean() < 1.5
    assert s.fingerprint() != t.fingerprint() and s.manifest().empty


BAD_SPECS = [
    ({"kind": "imagenet"}, ValueError, "image source kind 'imagenet' is unknown; expected one of \\['cifar', 'cifar10_1', 'cifar10_c'"),
    ({"root": "x"}, ValueError, "image source kind None is unknown"),
    ({"kind": "image_folder", "root": "{root}", "clases": ["a"]}, ValueError,
     "image source 'image_folder': unknown key\\(s\\) \\['clases'\\]; expected \\['root'\\] and optionally \\['class_index', 'classes'"),
    ({"kind": "cifar10_c", "root": "{cc}", "severity": 2}, ValueError, "missing key\\(s\\) \\['corruption'\\]"),
    ({"kind": "image_folder", "root": "{tmp}/nope"}, FileNotFoundError,
     "root folder '.*/nope' not found; expected one sub-folder per class holding image files"),
    ({"kind": "imagenetv2", "root": "{tmp}/nope"}, FileNotFoundError, "not found; expected numbered class folders 0..999"),
    ({"kind": "cifar10_c", "root": "{tmp}/nope", "corruption": "fog"}, FileNotFoundError,
     "not found; expected one <corruption>.npy per corruption and labels.npy"),
    ({"kind": "cifar", "root": "{tmp}/nope"}, FileNotFoundError, "not found; expected CIFAR-10's python batches"),
    ({"kind": "idx", "root": "{cc}"}, FileNotFoundError, "images file not found in .*; expected t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz"),
    ({"kind": "npy", "root": "{cc}", "images": "fog.npy", "labels": "y.npy"}, FileNotFoundError, "labels file '.*y.npy' not found; expected integer labels"),
    ({"kind": "npy", "root": "{cc}", "images": "../root/a/x.png"}, ValueError, "images '../root/a/x.png' is not inside the root folder"),
    ({"kind": "npy", "root": "{cc}", "images": "/etc/passwd"}, ValueError, "images '/etc/passwd' is not inside the root folder"),
    ({"kind": "image_folder", "root": "{root}", "class_index": "../../etc/hosts"}, ValueError, "class_index '../../etc/hosts' is not inside"),
    ({"kind": "image_folder", "root": "{root}", "class_index": "{tmp}/absent.json"}, FileNotFoundError,
     "class_index file '.*absent.json' not found; expected a class-index file"),
    ({"kind": "image_folder", "root": "{root}", "classes": "abc"}, TypeError, "classes must be a non-empty list of class names"),
    ({"kind": "image_folder", "root": "{root}", "extensions": ["jpg"]}, TypeError, "extensions must be a list like \\['.jpg', '.png'\\]"),
    ({"kind": "image_folder", "root": 3}, TypeError, "root must be a folder path, got 3"),
    ({"kind": "cifar10_c", "root": "{cc}", "corruption": "fog", "severity": 0}, ValueError, "severity must be an integer 1–5 or None"),
    ({"kind": "cifar10_c", "root": "{cc}", "corruption": "fog", "severity": True}, ValueError, "severity must be an integer 1–5"),
    ({"kind": "cifar10_c", "root": "{cc}", "corruption": "../x"}, ValueError, "corruption must be a corruption name"),
    ({"kind": "cifar", "root": "{cc}", "split": "val"}, ValueError, "split must be one of \\['test', 'train'\\], got 'val'"),
    ({"kind": "cifar10_1", "root": "{cc}", "version": "v5"}, ValueError, "version must be one of \\['v6', 'v4'\\], got 'v5'"),
    ({"kind": "npy", "root": "{cc}", "images": "fog.npy", "labels": "labels.npy", "layout": "HWC"}, ValueError,
     "layout must be one of \\['NHWC', 'NCHW'\\]"),
    ({"kind": "npy", "root": "{cc}", "images": "fog.npy", "labels": "labels.npy", "classes": ["a", "b"]}, ValueError,
     "labels run from 0 to 2 but there are 2 classes"),
    ({"kind": "npy", "root": "{cc}", "images": "fog.npy", "labels": "labels.npy", "name": ""}, ValueError, "name must be a non-empty string"),
]


@pytest.mark.parametrize("spec,err,msg", BAD_SPECS, ids=[f"{i}-{s.get('kind')}" for i, (s, _, _) in enumerate(BAD_SPECS)])
def test_bad_specs_fail_before_any_work(spec, err, msg, tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "a" / "x.png")
    cc = tmp_path / "cc"
    cc.mkdir()
    np.save(cc / "fog.npy", np.zeros((5, 4, 4, 3), np.uint8))
    np.save(cc / "labels.npy", np.array([0, 1, 2, 0, 1]))
    spec = {k: (v.format(root=root, cc=cc, tmp=tmp_path) if isinstance(v, str) else v) for k, v in spec.items()}
    def refuse(*a, **k): raise AssertionError("an image was read before the spec was checked")
    monkeypatch.setattr(Image, "open", refuse)
    monkeypatch.setattr(sources, "file_sha256", refuse)
    with pytest.raises(err, match=msg):
        image_source(spec, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_spec_keys_and_batch_arguments(jpeg_tree):
    root, index, _ = jpeg_tree
    assert source_keys("cifar10_c") == (["root", "corruption"], ["severity", "classes", "name"])
    assert source_keys("tensor") == (["images", "labels"], ["classes", "name"])
    src = image_source({"kind": "image_folder", "root": str(root), "class_index": str(index)})
    for kw, msg in [({"batch_size": 0}, "batch_size must be a positive integer"), ({"batch_size": 2, "workers": -1}, "workers must be"),
                    ({"batch_size": 2, "indices": [[1]]}, "indices must be a 1-d sequence of integers"),
                    ({"batch_size": 2, "indices": [13]}, "indices must lie in 0..12")]:
        with pytest.raises(ValueError, match=msg): src.batches(**kw)          # checked on the call, before any batch
    with pytest.raises(TypeError, match="prep must be a Preprocess"): src.batches(2, prep={"size": 3})
    with pytest.raises(ValueError, match="images in a batch differ in size .*pass a Preprocess with size and crop"):
        list(src.batches(4))
