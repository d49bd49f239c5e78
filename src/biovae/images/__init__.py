"""Cell-image workflow: a convolutional VAE over one patch per segmented object (e.g. nuclei).

    from biovae.io.images import read_image_pair, image_patches
    patches = image_patches(*read_image_pair("img.tif", "mask.tif"), size=64)
    model = biovae.images.fit(patches, ImageSettings(epochs=60, seed=1))
    model.quality(patches)   # SSIM / Pearson vs the mean-patch baseline
    model.scores(patches)    # anomaly scores per object
    biovae.images.run("img.tif", "mask.tif", "model/", ImageSettings())  # all of it, as `biovae fit-images`
"""

from biovae.images.fit import augment, fit, run
from biovae.images.model import ImageModel
from biovae.images.settings import ImageSettings

load = ImageModel.load

__all__ = ["augment", "fit", "run", "load", "ImageModel", "ImageSettings"]
