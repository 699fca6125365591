"""The Keras callbacks, driven by hand (as Keras's own callback tests do), without training."""

from __future__ import annotations

import time
from types import SimpleNamespace

import keras
import pytest

from trainer.callbacks import EpochTimer, LearningRateLogger, ReportEpoch, StopOnRequest
from trainer.reporting import EpochRecord


class FakeModel:
    """What the callbacks touch of a Keras model: stop_training (and optimizer)."""

    def __init__(self, optimizer=None) -> None:
        self.stop_training = False
        self.optimizer = optimizer


def attach(callback: keras.callbacks.Callback, model: FakeModel) -> keras.callbacks.Callback:
    callback.set_model(model)
    return callback


# --- StopOnRequest ------------------------------------------------------------------------------


def test_stop_on_request_does_nothing_until_asked(recording_reporter) -> None:
    model = FakeModel()
    stopper = attach(StopOnRequest(recording_reporter()), model)
    stopper.on_epoch_begin(0)
    for batch in range(5):
        stopper.on_train_batch_end(batch, {"loss": 1.0})
    assert model.stop_training is False
    assert stopper.stopped is False


def test_stop_on_request_stops_between_batches(recording_reporter) -> None:
    reporter = recording_reporter()
    model = FakeModel()
    stopper = attach(StopOnRequest(reporter), model)
    stopper.on_epoch_begin(0)
    stopper.on_train_batch_end(0)
    assert model.stop_training is False
    reporter.stop_after_epochs = 0  # from now on the reporter asks to stop
    stopper.on_train_batch_end(1)
    assert model.stop_training is True
    assert stopper.stopped is True


def test_stop_on_request_is_checked_when_an_epoch_begins(recording_reporter) -> None:
    model = FakeModel()
    stopper = attach(StopOnRequest(recording_reporter(stop_after_epochs=0)), model)
    stopper.on_epoch_begin(3)
    assert model.stop_training is True
    assert stopper.stopped is True


def test_stop_on_request_asks_once_it_has_stopped(recording_reporter) -> None:
    reporter = recording_reporter(stop_after_epochs=0)
    stopper = attach(StopOnRequest(reporter), FakeModel())
    stopper.on_train_batch_end(0)
    for batch in range(1, 10):
        stopper.on_train_batch_end(batch)
    assert reporter.stop_questions == 1, "should_stop may be costly: not asked again"


# --- ReportEpoch --------------------------------------------------------------------------------


def full_logs() -> dict:
    return {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625, "val_accuracy": 0.5,
            "learning_rate": 0.001, "epoch_seconds": 2.5}


def test_report_epoch_hands_the_logs_to_the_reporter(recording_reporter) -> None:
    reporter = recording_reporter()
    model = FakeModel()
    stopper = attach(StopOnRequest(reporter), model)
    reporter_cb = attach(ReportEpoch(reporter, stopper), model)
    reporter_cb.on_epoch_end(0, full_logs())
    reporter_cb.on_epoch_end(1, {**full_logs(), "loss": 0.25})
    assert reporter.records == [
        EpochRecord(epoch=0, loss=0.5, accuracy=0.75, val_loss=0.625, val_accuracy=0.5,
                    learning_rate=0.001, seconds=2.5),
        EpochRecord(epoch=1, loss=0.25, accuracy=0.75, val_loss=0.625, val_accuracy=0.5,
                    learning_rate=0.001, seconds=2.5),
    ]
    assert all(type(v) in (int, float) for v in reporter.records[0].as_dict().values())


def test_report_epoch_without_validation_reports_none(recording_reporter) -> None:
    reporter = recording_reporter()
    stopper = StopOnRequest(reporter)
    ReportEpoch(reporter, stopper).on_epoch_end(4, {"loss": 1.5, "accuracy": 0.25})
    (record,) = reporter.records
    assert (record.epoch, record.loss, record.accuracy) == (4, 1.5, 0.25)
    assert record.val_loss is None and record.val_accuracy is None
    assert record.learning_rate is None
    assert record.seconds == 0.0


def test_report_epoch_converts_numpy_and_tensor_values(recording_reporter) -> None:
    reporter = recording_reporter()
    logs = {"loss": keras.ops.convert_to_tensor(0.5), "accuracy": keras.ops.array(0.25),
            "val_loss": keras.ops.convert_to_numpy(keras.ops.array(1.0))}
    ReportEpoch(reporter, StopOnRequest(reporter)).on_epoch_end(0, logs)
    (record,) = reporter.records
    assert (record.loss, record.accuracy, record.val_loss) == (0.5, 0.25, 1.0)
    assert all(type(v) is float for v in (record.loss, record.accuracy, record.val_loss))


def test_a_cut_short_epoch_is_not_reported(recording_reporter) -> None:
    reporter = recording_reporter(stop_after_epochs=1)
    model = FakeModel()
    stopper = attach(StopOnRequest(reporter), model)
    report = attach(ReportEpoch(reporter, stopper), model)
    # Keras's order of hooks for two epochs, the stop request arriving during the second.
    stopper.on_epoch_begin(0)
    stopper.on_train_batch_end(0)
    report.on_epoch_end(0, full_logs())
    stopper.on_epoch_begin(1)
    stopper.on_train_batch_end(0)
    report.on_epoch_end(1, full_logs())  # Keras still closes the partial epoch
    assert [record.epoch for record in reporter.records] == [0]
    assert model.stop_training is True


# --- EpochTimer and LearningRateLogger ----------------------------------------------------------


def test_epoch_timer_adds_the_epochs_seconds() -> None:
    timer = EpochTimer()
    timer.on_epoch_begin(0)
    time.sleep(0.05)
    logs = {"loss": 1.0}
    timer.on_epoch_end(0, logs)
    assert 0.05 <= logs["epoch_seconds"] < 5
    timer.on_epoch_begin(1)
    logs = {}
    timer.on_epoch_end(1, logs)
    assert 0 <= logs["epoch_seconds"] < 0.05, "each epoch is timed from its own start"
    timer.on_epoch_end(2, None)  # Keras may pass no logs


@pytest.mark.parametrize("rate", [0.001, 0.25])
def test_learning_rate_logger_reads_the_optimizer(rate: float) -> None:
    logger = attach(LearningRateLogger(), FakeModel(keras.optimizers.Adam(learning_rate=rate)))
    logs: dict = {}
    logger.on_epoch_end(0, logs)
    assert logs["learning_rate"] == pytest.approx(rate, rel=1e-6)
    assert type(logs["learning_rate"]) is float


def test_learning_rate_logger_follows_a_changed_rate() -> None:
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    logger = attach(LearningRateLogger(), FakeModel(optimizer))
    optimizer.learning_rate = 0.05
    logs: dict = {}
    logger.on_epoch_end(0, logs)
    assert logs["learning_rate"] == pytest.approx(0.05)


def test_learning_rate_logger_keeps_a_rate_keras_logged() -> None:
    logger = attach(LearningRateLogger(), FakeModel(SimpleNamespace(learning_rate=0.5)))
    logs = {"learning_rate": 0.125}
    logger.on_epoch_end(0, logs)
    assert logs["learning_rate"] == 0.125
    logger.on_epoch_end(1, None)


def test_the_default_reporter_listens_and_never_stops() -> None:
    from trainer.reporting import Reporter

    reporter = Reporter()
    reporter.on_start(total_epochs=3, initial_epoch=0)
    reporter.on_epoch(EpochRecord(0, 1.0, 0.5, None, None, None, 0.1))
    assert reporter.should_stop() is False
