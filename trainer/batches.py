"""The training and validation batches ``fit`` feeds Keras: plain NumPy, so any Keras backend trains.

Every batch is a pure function of (seed, epoch, batch index): a run repeats exactly, whichever
backend runs it and however Keras prefetches, and a tile's augmentation is seeded by its place in
the stream, so every epoch sees new augmentations.
"""
from __future__ import annotations

import keras
import numpy as np

from paipviewer.core.preprocess import to_float

from .augment import augment_pair, random_scale, stain_jitter


class TileBatches(keras.utils.PyDataset):
    """Batches of (float image (b, h, w, 3), float mask (b, h, w, 1)) from uint8 tiles and masks.

    Without ``steps`` an epoch is one pass over the tiles (the last batch may be short). With it, an
    epoch is ``steps`` batches drawn from an endless stream of passes, so short epochs still visit
    every tile in turn. ``shuffle`` draws a new order for each pass. ``epoch`` is the first epoch's number.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int, *, shuffle: bool, seed: int,
                 steps: int | None = None, augment: bool = False, epoch: int = 0, stain: bool = False,
                 scale: bool = False):
        super().__init__()
        if len(x) != len(y) or not len(x):
            raise ValueError(f"need as many masks as tiles, and at least one: {len(x)} tiles, {len(y)} masks")
        self.x, self.y, self.batch = x, y, batch
        self.shuffle, self.seed, self.steps, self.augment = shuffle, seed, steps, augment
        self.stain, self.scale = stain, scale
        self.epoch = epoch  # a resumed run starts where it stopped, so its batches are the ones it would have had
        self._order = (None, None)

    def __len__(self) -> int:
        return self.steps if self.steps is not None else -(-len(self.x) // self.batch)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def positions(self, index: int) -> list[tuple[int, int]]:
        """(pass, position within the pass) of each tile of batch ``index`` in the current epoch."""
        n = len(self.x)
        if self.steps is None:
            start = index * self.batch
            return [(self.epoch, p) for p in range(start, min(start + self.batch, n))]
        start = (self.epoch * self.steps + index) * self.batch
        return [divmod(p, n) for p in range(start, start + self.batch)]

    def tile_index(self, pass_: int, position: int) -> int:
        if not self.shuffle:
            return position
        if self._order[0] != pass_:
            self._order = (pass_, np.random.default_rng(self.seed + pass_).permutation(len(self.x)))
        return int(self._order[1][position])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        images, masks = [], []
        for pass_, position in self.positions(index):
            i = self.tile_index(pass_, position)
            image = to_float(np.asarray(self.x[i]))
            mask = np.asarray(self.y[i], dtype=np.float32)[..., None]
            # Each augmentation draws from its own stream, so turning one on or off leaves the others' draws
            # (and a run without any) exactly as they were: on/off comparisons differ in that one thing.
            if self.scale:
                image, mask = random_scale(image, mask, np.random.default_rng((self.seed, pass_, position, 1)))
            if self.stain:
                image = stain_jitter(image, np.random.default_rng((self.seed, pass_, position, 2)))
            if self.augment:
                image, mask = augment_pair(image, mask, np.random.default_rng((self.seed, pass_, position)))
            images.append(image)
            masks.append(mask)
        return np.stack(images), np.stack(masks)
