"""Models and checkpoints load without unpickling: a crafted zip never runs its payload."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from gymnasium import spaces

from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from agents.model_io import build_algorithm, load_model
from agents.training import load_trained_policy
from simulator.common.errors import FxRiskError, ModelFileError
from tests.conftest import load_script


class Payload:
    """Unpickling this creates ``path`` (as a crafted model would run any code)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def config() -> TrainConfig:
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    return replace(base, ppo=replace(base.ppo, net_arch=(8, 8)))


def saved_run(folder: Path, cfg: TrainConfig | None = None) -> Path:
    """A run folder with config.yaml and a model.zip saved by SB3 (7 observations, 1 pair)."""
    cfg = cfg or config()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    model = build_algorithm(cfg, observation_space=spaces.Box(-100, 100, (7,), np.float32),
                            action_space=spaces.Box(-1, 1, (1,), np.float32))
    model.save(folder / "model.zip")
    return folder / "model.zip"


def rewrite(path: Path, **members: bytes) -> None:
    with zipfile.ZipFile(path) as z:
        content = {n: z.read(n) for n in z.namelist()}
    content.update(members)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in content.items():
            z.writestr(name, data)


def crafted_data(path: Path, marker: Path) -> bytes:
    import cloudpickle

    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("data"))
    data["policy_class"] = {":type:": "<class 'abc.ABCMeta'>",
                            ":serialized:": base64.b64encode(cloudpickle.dumps(Payload(marker))).decode()}
    return json.dumps(data).encode()


def crafted_pth(marker: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"mlp_extractor.policy_net.0.weight": Payload(marker)}, buf)
    return buf.getvalue()


def test_the_payloads_are_real(tmp_path) -> None:
    """Unsafe loaders would run them (what the safe loader must never do)."""
    marker = tmp_path / "ran"
    torch.load(io.BytesIO(crafted_pth(marker)), weights_only=False)
    assert marker.exists()
    marker.unlink()
    from stable_baselines3 import PPO

    path = saved_run(tmp_path / "run")
    rewrite(path, data=crafted_data(path, marker))
    with pytest.raises(Exception):
        PPO.load(path)
    assert marker.exists()


def test_a_saved_model_loads_from_its_weights_and_config(tmp_path) -> None:
    path = saved_run(tmp_path / "run")
    model = load_model(path)
    obs = np.zeros((1, 7), dtype=np.float32)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (1, 1)


def test_crafted_data_entries_are_never_deserialised(tmp_path) -> None:
    marker = tmp_path / "ran"
    path = saved_run(tmp_path / "run")
    rewrite(path, data=crafted_data(path, marker))
    policy = load_trained_policy(path)  # the weights are genuine: it loads, the payload is never touched
    assert policy.model is not None
    assert not marker.exists()


@pytest.mark.parametrize("member", ["policy.pth", "policy.optimizer.pth"])
def test_crafted_weights_are_refused_in_one_line(tmp_path, member) -> None:
    marker = tmp_path / "ran"
    path = saved_run(tmp_path / "run")
    rewrite(path, **{member: crafted_pth(marker)})
    if member == "policy.pth":
        with pytest.raises(ModelFileError, match="weights-only") as err:
            load_model(path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    else:  # predict never reads the optimizer; reading the zip does, weights-only
        from agents.model_io import read_model_zip

        with pytest.raises(ModelFileError, match="weights-only"):
            read_model_zip(path)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["not a zip", "no policy", "no config", "other net", "other pairs"])
def test_a_file_that_is_not_such_a_model_is_one_line(tmp_path, case) -> None:
    path = saved_run(tmp_path / "run")
    if case == "not a zip":
        path.write_bytes(b"hello")
    elif case == "no policy":
        with zipfile.ZipFile(path) as z:
            keep = {n: z.read(n) for n in z.namelist() if n != "policy.pth"}
        with zipfile.ZipFile(path, "w") as z:
            for n, d in keep.items():
                z.writestr(n, d)
    elif case == "no config":
        (path.parent / "config.yaml").unlink()
    elif case == "other net":
        cfg = config()
        (path.parent / "config.yaml").write_text(yaml.safe_dump(
            replace(cfg, ppo=replace(cfg.ppo, net_arch=(16,))).to_dict(), sort_keys=False))
    else:
        cfg = config()
        (path.parent / "config.yaml").write_text(yaml.safe_dump(
            replace(cfg, data=replace(cfg.data, symbols=("EURUSD", "USDJPY"))).to_dict(), sort_keys=False))
    with pytest.raises(FxRiskError) as err:
        load_trained_policy(path)
    assert "\n" not in str(err.value) and str(path.parent) in str(err.value)


def test_evaluate_and_resume_refuse_crafted_files_with_exit_2(tmp_path, capsys) -> None:
    marker = tmp_path / "ran"
    path = saved_run(tmp_path / "run")
    rewrite(path, **{"policy.pth": crafted_pth(marker)})
    rc = load_script("evaluate").main(["--model", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "policy.pth" in err
    assert not marker.exists()
    # A checkpoint with a crafted model: train --resume refuses it.
    run = tmp_path / "train-x.partial"
    ckpt = run / "checkpoints" / "step-0000000512"
    ckpt.mkdir(parents=True)
    cfg = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(cfg, n_envs=2, data=replace(cfg.data, n_bars=2000), env=replace(cfg.env, episode_bars=100))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    (run / "manifest.yaml").write_text("created_utc: x\n")
    (ckpt / "model.zip").write_bytes(path.read_bytes())
    (ckpt / "state.json").write_text(json.dumps({"timesteps": 512, "best_score": 0.0, "eval_history": []}))
    np.savez(ckpt / "state.npz", x=np.zeros(1))
    (ckpt / "normalisation.json").write_text(json.dumps({"obs_mean": [0.0], "obs_var": [1.0], "obs_count": 1.0,
                                                          "ret_mean": 0.0, "ret_var": 1.0, "ret_count": 1.0}))
    rc = load_script("train").main(["--resume", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert not marker.exists()


def test_stress_test_refuses_a_crafted_model_before_creating_its_run_folder(tmp_path, capsys) -> None:
    marker = tmp_path / "ran"
    path = saved_run(tmp_path / "run")
    rewrite(path, **{"policy.pth": crafted_pth(marker)})
    out = tmp_path / "out"
    rc = load_script("stress_test").main(["--model", f"ppo={path}", "--out", str(out), "--no-progress",
                                          "--no-baselines", "--scenarios", "baseline", "--seeds", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "policy.pth" in err
    assert not marker.exists() and not any(out.iterdir())
