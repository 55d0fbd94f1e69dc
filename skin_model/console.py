"""Training progress on the command line, drawn from the events the app reads (``train.ProgressLog``).

On a terminal: Keras's own progress bar for each epoch (step, loss, accuracy, time left in the
epoch), then one line with the validation metrics. Piped into a file or another program: only
that one plain line per epoch, so logs stay readable.
"""

from __future__ import annotations

import sys


def epoch_line(event: dict) -> str:
    """The one line an ``epoch`` event becomes: training and validation metrics, best epoch, time left."""
    line = (
        f"epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f}, accuracy {event['accuracy']:.4f}, "
        f"val loss {event['val_loss']:.4f}, val accuracy {event['val_accuracy']:.4f}, "
        f"val balanced accuracy {event['val_balanced_accuracy']:.4f} (best epoch {event['best_epoch']})"
    )
    left = event.get("eta_s")
    return line + (f", about {left / 60:.1f} min left" if left else "")


class TrainingConsole:
    """A ``listener`` for ``train.run``: prints to stdout as training goes, as a bar or as plain lines."""

    def __init__(self, terminal: bool | None = None):
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self._bar = None
        self._epoch = None

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "epoch":
            print(epoch_line(event), flush=True)
        elif not self.terminal:
            return
        elif kind == "prepare":
            print(f"preparing {event['data']}: audit, split, balancing...", flush=True)
        elif kind == "start":
            print(
                f"training on {event['train_images']} images ({event['originals']} originals), "
                f"validating on {event['val_images']}: {event['epochs']} epochs of {event['steps']} steps",
                flush=True,
            )
        elif kind == "step":
            self._step(event)

    def _step(self, event: dict) -> None:
        from keras.utils import Progbar

        if event["epoch"] != self._epoch:
            self._epoch = event["epoch"]
            print(f"epoch {event['epoch']}/{event['epochs']}", flush=True)
            self._bar = Progbar(event["steps"], stateful_metrics=["loss", "accuracy"])  # values are running means
        self._bar.update(event["step"], [("loss", event["loss"]), ("accuracy", event["accuracy"])])
