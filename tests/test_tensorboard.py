"""TensorBoard event files: written beside metrics.csv, with stable tags and hyperparameters."""

import csv

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from acrl import A2C

TAGS = {
    "charts/episodic_return",
    "charts/steps_per_second",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/grad_norm",
    "losses/explained_variance",
}


def test_a_run_writes_its_metrics_and_hyperparameters_for_tensorboard(tmp_path):
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=4, seed=0, log_dir=tmp_path, ent_coef=0.01)
    model.learn(4_000, log_interval=20)
    assert list(tmp_path.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["scalars"]) >= TAGS
    with (tmp_path / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    policy_loss = events.Scalars("losses/policy_loss")
    assert [e.step for e in policy_loss] == [int(r["timesteps"]) for r in rows]
    assert [round(e.value, 4) for e in policy_loss] == [
        round(float(r["policy_loss"]), 4) for r in rows
    ]
    entropy = events.Scalars("losses/entropy")
    assert all(0.0 < e.value <= 0.6932 for e in entropy)  # two actions: at most log 2
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugins
    start = plugins["_hparams_/session_start_info"]
    for name in (b"env_id", b"CartPole-v1", b"gae_lambda", b"n_envs", b"ent_coef"):
        assert name in start
