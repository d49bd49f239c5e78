"""Cell images: patches of the real nuclei image, the conv engine network, the image workflow and
its command line (bad inputs -> one clear line and exit 2)."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from biovae import VAE, BiovaeError
from biovae.cli import main
from browser import check_report
from biovae.images import ImageModel, augment, fit
from biovae.images.metrics import pearson, ssim
from biovae.io.images import image_patches, read_image_pair


IMAGES = Path(__file__).resolve().parent / "data" / "images"


@pytest.fixture(scope="module")
def nuclei():
    return read_image_pair(IMAGES / "img2d.tif", IMAGES / "mask2d.tif")


def fitting_labels(mask, size, inside_image=False):
    """Labels whose pixels all lie in the size x size window centred on their rounded centroid."""
    out, half = [], size // 2
    for lab in np.unique(mask[mask > 0]):
        rows, cols = np.nonzero(mask == lab)
        r0, c0 = int(round(rows.mean())) - half, int(round(cols.mean())) - half
        fits = rows.min() >= r0 and rows.max() < r0 + size and cols.min() >= c0 and cols.max() < c0 + size
        if inside_image:
            fits &= r0 >= 0 and c0 >= 0 and r0 + size <= mask.shape[0] and c0 + size <= mask.shape[1]
        if fits:
            out.append(int(lab))
    return out


@pytest.mark.parametrize("size,edge", [(64, "pad"), (32, "pad"), (64, "drop")])
def test_one_centred_normalised_patch_per_object_that_fits(nuclei, size, edge):
    image, mask = nuclei
    p = image_patches(image, mask, size=size, edge=edge)
    expected = fitting_labels(mask, size, inside_image=edge == "drop")
    assert p.ids.tolist() == expected and len(p) + len(p.skipped) == 125
    assert p.images.shape == (len(expected), size, size) and p.images.dtype == np.float32
    assert 0.0 <= p.images.min() and p.images.max() <= 1.0
    rr, cc = np.mgrid[:size, :size]
    area = p.masks.sum((1, 2))
    assert np.array_equal(area, p.areas) and np.array_equal(p.areas, np.bincount(mask.ravel())[p.ids])
    offset_r = (p.masks * rr).sum((1, 2)) / area - size // 2
    offset_c = (p.masks * cc).sum((1, 2)) / area - size // 2
    assert np.abs(offset_r).max() <= 0.5 and np.abs(offset_c).max() <= 0.5
    inside = np.array([img[m].mean() for img, m in zip(p.images, p.masks)])
    assert (inside > p.background).mean() > 0.95  # nuclei are brighter than the background
    # isolate="object": nothing but the object and a 2 px rim differs from the background
    rim = np.stack([ndi.binary_dilation(m, iterations=2) for m in p.masks])
    assert np.all(p.images[~rim] == np.float32(p.background))


def test_patch_errors_are_clear(nuclei):
    image, mask = nuclei
    with pytest.raises(BiovaeError, match="shapes differ.*512 x 512.*512 x 256"):
        image_patches(image, mask[:, :256])
    with pytest.raises(BiovaeError, match="no objects"):
        image_patches(image, np.zeros_like(mask))
    with pytest.raises(BiovaeError, match="non-integer values"):
        image_patches(image, mask + 0.5)
    with pytest.raises(BiovaeError, match="binary"):
        image_patches(image, mask > 0)
    with pytest.raises(BiovaeError, match="none of the 125 objects fits"):
        image_patches(image, mask, size=8)


def _one_line_error(capsys, argv, *phrases):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("biovae fit-images: error:"), err
    for phrase in phrases:
        assert phrase in err, err
    return err


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, nuclei, capsys):
    image, mask = nuclei
    img, good = tmp_path / "img.tif", tmp_path / "mask.tif"
    tifffile.imwrite(img, image)
    tifffile.imwrite(good, mask)
    small, empty, frac, junk = (tmp_path / n for n in ("small.tif", "empty.tif", "frac.tif", "junk.tif"))
    tifffile.imwrite(small, mask[:256])
    tifffile.imwrite(empty, np.zeros_like(mask))
    tifffile.imwrite(frac, mask.astype(np.float32) * 0.5)
    junk.write_text("not a tiff\n")
    out = str(tmp_path / "model")
    _one_line_error(capsys, ["fit-images", str(img), str(small), "-o", out], "shapes differ", "small.tif")
    _one_line_error(capsys, ["fit-images", str(img), str(empty), "-o", out], "no objects", "empty.tif")
    _one_line_error(capsys, ["fit-images", str(img), str(frac), "-o", out], "non-integer", "frac.tif")
    _one_line_error(capsys, ["fit-images", str(junk), str(good), "-o", out], "cannot read image", "junk.tif")
    _one_line_error(capsys, ["fit-images", str(tmp_path / "nope.tif"), str(good), "-o", out], "does not exist")
    _one_line_error(capsys, ["fit-images", str(img), str(good), "-o", out, "--size", "36"], "divisible by 16")
    assert not (tmp_path / "model").exists()


def test_conv_vae_save_load_round_trip_gives_identical_encodings(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 16 * 16)).astype(np.float32)
    vae = VAE(256, likelihood="bernoulli", network="conv", image_shape=(16, 16), conv_channels=[4, 8],
              hidden=[32], latent_dim=3, seed=1).fit(x, epochs=2, batch_size=16, progress=False, seed=1)
    vae.save(tmp_path / "m")
    back = VAE.load(tmp_path / "m")
    assert back.config.network == "conv" and back.config.image_shape == [16, 16]
    for a, b in zip(vae.encode(x), back.encode(x)):
        assert np.array_equal(a, b)
    assert np.array_equal(vae.decode(np.ones((2, 3))), back.decode(np.ones((2, 3))))
    with pytest.raises(BiovaeError, match="not a .images. model"):
        ImageModel.load(tmp_path / "m")


def test_model_files_without_network_fields_still_load(tmp_path):
    x = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    vae = VAE(6, latent_dim=2, hidden=[8], seed=0).fit(x, epochs=1, progress=False)
    vae.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    doc = json.loads(path.read_text())
    for key in ("network", "image_shape", "conv_channels"):
        del doc["model"][key]
    doc.pop("config_sha256", None)  # files from before these fields had no config checksum either
    path.write_text(json.dumps(doc))
    back = VAE.load(tmp_path / "m")
    assert back.config.network == "mlp" and np.array_equal(back.encode(x)[0], vae.encode(x)[0])


def test_augment_is_seeded_and_keeps_the_originals_first():
    imgs = np.random.default_rng(2).random((5, 16, 16)).astype(np.float32)
    a, b, c = augment(imgs, 3, seed=4), augment(imgs, 3, seed=4), augment(imgs, 3, seed=5)
    assert a.shape == (15, 16, 16) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[:5], imgs)


def test_ssim_and_pearson():
    rng = np.random.default_rng(3)
    x = rng.random((4, 32, 32))
    assert np.allclose(ssim(x, x), 1) and np.allclose(pearson(x, x), 1)
    noisy = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1)
    assert (ssim(x, noisy) < 0.9).all() and (pearson(x, noisy) < 0.9).all()
    assert np.allclose(pearson(x, 1 - x), -1)


def test_short_fit_reconstructs_better_than_the_mean_patch(nuclei, tmp_path):
    patches = image_patches(*nuclei, size=32)
    model = fit(patches, channels=(8, 16, 32), hidden=(64,), latent_dim=8, copies=4, epochs=12, batch_size=32,
                seed=1, progress=False)
    q = model.quality(patches)
    assert q["ssim"] > q["baseline_ssim"] + 0.01 and q["corr"] > q["baseline_corr"] + 0.02, q
    scores = model.scores(patches)
    assert len(scores) == len(patches) and np.isfinite(scores.drop(columns="id").to_numpy()).all()
    model.save(tmp_path / "m")
    back = ImageModel.load(tmp_path / "m")
    assert back.patch_options["size"] == 32 and np.array_equal(back.encode(patches)[0], model.encode(patches)[0])
    assert json.loads((tmp_path / "m" / "config.json").read_text())["metadata"]["kind"] == "images"


def test_cli_fit_images_writes_the_folder_and_ends_with_a_summary(nuclei, tmp_path, capsys):
    image, mask = nuclei
    img, msk = tmp_path / "img.tif", tmp_path / "mask.tif"
    tifffile.imwrite(img, image[:256])
    tifffile.imwrite(msk, mask[:256])
    out = tmp_path / "model"
    argv = ["fit-images", str(img), str(msk), "-o", str(out), "--size", "32", "--channels", "4", "8",
            "--hidden", "16", "--latent-dim", "4", "--epochs", "2", "--copies", "2", "--holdout", "0.2", "--quiet"]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("biovae fit-images:") and "held-out SSIM" in last and str(out) in last
    summary = json.loads((out / "summary.json").read_text())
    for name in summary["files"].values():
        assert (out / name).stat().st_size > 0
    scores = (out / "scores.tsv").read_text().splitlines()
    assert len(scores) == summary["patches"] + 1 and scores[0].startswith("id\trow\tcol\tarea\tsplit\tneg_elbo")
    assert summary["held_out_objects"] == round(0.2 * summary["patches"])
    assert ImageModel.load(out).shape == (32, 32)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
    check_report(out / "report.html", tmp_path, images=5, text=["biovae fit-images", "held-out SSIM", "reconstructions"])
