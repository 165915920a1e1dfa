"""The stand-in nnUNetv2_* commands: they accept what nnU-Net accepts, refuse what it refuses with its wording,
and leave the files nnU-Net leaves (../shared/reference/nnunet.md)."""
import glob
import json
import os
import re
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

HERE = os.path.dirname(os.path.realpath(__file__))
NAME = "Dataset042_Tiny"
CASES = [f"tiny_{i:03d}" for i in range(6)]


def write_nifti(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.5, 1.0]))
    nib.save(image, path)


@pytest.fixture
def roots(tmp_path):
    """The three nnU-Net folders with a 6-case, 2-label dataset in nnUNet_raw, as the worker exports it."""
    raw = tmp_path / "nnUNet_raw" / NAME
    for i, case in enumerate(CASES):
        image = (np.arange(8 * 8 * 4).reshape(8, 8, 4) + i).astype(np.int16)
        label = np.zeros((8, 8, 4), np.uint8)
        label[2:5, 2:5, 1:3] = 1
        label[5:7, 5:7, 2] = 2
        write_nifti(str(raw / "imagesTr" / f"{case}_0000.nii.gz"), image)
        write_nifti(str(raw / "labelsTr" / f"{case}.nii.gz"), label)
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2},
        "numTraining": len(CASES), "file_ending": ".nii.gz"}))
    return {v: str(tmp_path / v) for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}


def run(command, *args, roots=None, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_") and not k.startswith("ORTHANCSEG_STANDIN")}
    environment.update(roots or {})
    environment.update({"ORTHANCSEG_STANDIN_STEP_SECONDS": "0", "CUDA_VISIBLE_DEVICES": "0"})
    environment.update(env or {})
    return subprocess.run([os.path.join(HERE, command), *args], env=environment, capture_output=True, text=True, timeout=120)


def preprocess(roots, *extra):
    result = run("nnUNetv2_plan_and_preprocess", "-d", "42", "-c", "3d_fullres", "--verify_dataset_integrity", "-np", "1", "-npfp", "1",
                 *extra, roots=roots)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_preprocessing_writes_plans_fingerprint_and_preprocessed_cases(roots):
    result = preprocess(roots)

    pre = os.path.join(roots["nnUNet_preprocessed"], NAME)
    assert "verify_dataset_integrity Done" in result.stdout
    for name in ("dataset.json", "dataset_fingerprint.json", "nnUNetPlans.json"):
        assert os.path.isfile(os.path.join(pre, name)), name
    assert set(json.load(open(os.path.join(pre, "nnUNetPlans.json")))["configurations"]) >= {"2d", "3d_fullres"}
    for case in CASES:
        assert os.path.isfile(os.path.join(pre, "gt_segmentations", case + ".nii.gz"))
        assert os.path.isfile(os.path.join(pre, "nnUNetPlans_3d_fullres", case + ".npz"))
        assert os.path.isfile(os.path.join(pre, "nnUNetPlans_3d_fullres", case + ".pkl"))
    assert not os.path.exists(os.path.join(pre, "splits_final.json"))


def test_a_residual_encoder_planner_writes_its_plans(roots):
    preprocess(roots, "-pl", "nnUNetPlannerResEncL", "--clean")

    pre = os.path.join(roots["nnUNet_preprocessed"], NAME)
    assert os.path.isfile(os.path.join(pre, "nnUNetResEncUNetLPlans.json"))
    assert os.path.isdir(os.path.join(pre, "nnUNetResEncUNetLPlans_3d_fullres"))


def break_dataset(roots, how):
    raw = os.path.join(roots["nnUNet_raw"], NAME)
    if how == "count":
        dataset = json.load(open(os.path.join(raw, "dataset.json")))
        dataset["numTraining"] = 7
        json.dump(dataset, open(os.path.join(raw, "dataset.json"), "w"))
    elif how == "label-file":
        os.remove(os.path.join(raw, "labelsTr", "tiny_003.nii.gz"))
    elif how == "label-value":
        write_nifti(os.path.join(raw, "labelsTr", "tiny_001.nii.gz"), np.full((8, 8, 4), 3, np.uint8))
    elif how == "shape":
        write_nifti(os.path.join(raw, "labelsTr", "tiny_002.nii.gz"), np.zeros((8, 8, 5), np.uint8))


@pytest.mark.parametrize("how, wording", [
    ("count", "AssertionError: Did not find the expected number of training cases (7). Found 6 instead."),
    ("label-file", "AssertionError: not all training cases have a label file in labelsTr. Fix that. Missing: ['tiny_003']"),
    ("label-value", "RuntimeError: Some segmentation images contained unexpected labels."),
    ("shape", "RuntimeError: Some images have errors. Please check text output above"),
])
def test_a_broken_dataset_fails_the_integrity_check_in_nnunets_words(roots, how, wording):
    break_dataset(roots, how)

    result = run("nnUNetv2_plan_and_preprocess", "-d", "42", "-c", "3d_fullres", "--verify_dataset_integrity", roots=roots)

    assert result.returncode == 1
    assert wording in result.stderr
    if how == "label-value":
        assert "Error: Unexpected labels found in file" in result.stdout and "Expected: [0, 1, 2]" in result.stdout
    if how == "shape":
        assert "Error: Shape mismatch between segmentation and corresponding images." in result.stdout
    assert not os.path.exists(os.path.join(roots["nnUNet_preprocessed"], NAME, "nnUNetPlans.json"))


def test_missing_folder_variables_and_unknown_datasets_fail(roots):
    no_raw = dict(roots)
    del no_raw["nnUNet_raw"]

    unset = run("nnUNetv2_plan_and_preprocess", "-d", "42", roots=no_raw)
    unknown = run("nnUNetv2_plan_and_preprocess", "-d", "43", roots=roots)
    bad_argument = run("nnUNetv2_plan_and_preprocess", "-d", "42", "--frobnicate", roots=roots)

    assert unset.returncode == 1 and "nnUNet_raw is not defined" in unset.stdout
    assert unknown.returncode == 1 and "RuntimeError: Could not find a dataset with the ID 43." in unknown.stderr
    assert bad_argument.returncode == 2 and "unrecognized arguments: --frobnicate" in bad_argument.stderr


def test_training_a_fold_prints_epochs_and_writes_checkpoints_validation_and_summary(roots):
    preprocess(roots)

    result = run("nnUNetv2_train", "42", "3d_fullres", "0", "-tr", "nnUNetTrainer", "-p", "nnUNetPlans", roots=roots,
                 env={"ORTHANCSEG_STANDIN_EPOCHS": "2"})

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}: ", line) for line in lines), lines
    text = "\n".join(lines)
    for expected in ("Creating new 5-fold cross-validation split...", "This split has 4 training and 2 validation cases.", "Epoch 0", "Epoch 1",
                     "Current learning rate:", "train_loss", "val_loss", "Pseudo dice [", "Epoch time:", "Yayy! New best EMA pseudo Dice:",
                     "Mean Validation Dice:"):
        assert expected in text, expected
    model = os.path.join(roots["nnUNet_results"], NAME, "nnUNetTrainer__nnUNetPlans__3d_fullres")
    for name in ("dataset.json", "dataset_fingerprint.json", "plans.json"):
        assert os.path.isfile(os.path.join(model, name)), name
    fold = os.path.join(model, "fold_0")
    for name in ("checkpoint_final.pth", "checkpoint_best.pth", "debug.json", "progress.png"):
        assert os.path.isfile(os.path.join(fold, name)), name
    assert len(glob.glob(os.path.join(fold, "training_log_*.txt"))) == 1
    summary = json.load(open(os.path.join(fold, "validation", "summary.json")))
    keys = {"Dice", "IoU", "FN", "FP", "TN", "TP", "n_pred", "n_ref"}
    assert set(summary["foreground_mean"]) == keys
    assert set(summary["mean"]) == {"1", "2"} and set(summary["mean"]["1"]) == keys
    assert len(summary["metric_per_case"]) == 2
    assert set(summary["metric_per_case"][0]) == {"metrics", "prediction_file", "reference_file"}
    assert 0 < summary["foreground_mean"]["Dice"] < 1
    splits = json.load(open(os.path.join(roots["nnUNet_preprocessed"], NAME, "splits_final.json")))
    assert len(splits) == 5 and sorted(c for s in splits for c in s["val"]) == CASES


def test_training_uses_the_splits_it_is_given(roots):
    preprocess(roots)
    splits = [{"train": [c for c in CASES if c != v], "val": [v]} for v in CASES[:5]]
    with open(os.path.join(roots["nnUNet_preprocessed"], NAME, "splits_final.json"), "w") as f:
        json.dump(splits, f)

    result = run("nnUNetv2_train", "42", "3d_fullres", "4", roots=roots, env={"ORTHANCSEG_STANDIN_EPOCHS": "1"})

    assert result.returncode == 0, result.stderr
    assert "Creating new" not in result.stdout
    assert "This split has 5 training and 1 validation cases." in result.stdout
    fold = os.path.join(roots["nnUNet_results"], NAME, "nnUNetTrainer__nnUNetPlans__3d_fullres", "fold_4")
    assert sorted(os.listdir(os.path.join(fold, "validation"))) == ["summary.json", "tiny_004.nii.gz"]


def test_training_fails_as_nnunet_does(roots):
    preprocess(roots)

    no_gpu = run("nnUNetv2_train", "42", "3d_fullres", "0", roots=roots, env={"CUDA_VISIBLE_DEVICES": ""})
    on_cpu = run("nnUNetv2_train", "42", "3d_fullres", "all", "-device", "cpu", roots=roots, env={"CUDA_VISIBLE_DEVICES": "", "ORTHANCSEG_STANDIN_EPOCHS": "1"})
    not_preprocessed = run("nnUNetv2_train", "42", "3d_lowres", "0", roots=roots)
    other_plans = run("nnUNetv2_train", "42", "3d_fullres", "0", "-p", "nnUNetResEncUNetLPlans", roots=roots)
    bad_trainer = run("nnUNetv2_train", "42", "3d_fullres", "0", "-tr", "MyTrainer", roots=roots)
    out_of_memory = run("nnUNetv2_train", "42", "3d_fullres", "2", roots=roots, env={"ORTHANCSEG_STANDIN_FAIL_FOLD": "2"})

    assert no_gpu.returncode == 1 and "RuntimeError: No CUDA GPUs are available" in no_gpu.stderr
    assert on_cpu.returncode == 0, on_cpu.stderr
    assert os.path.isfile(os.path.join(roots["nnUNet_results"], NAME, "nnUNetTrainer__nnUNetPlans__3d_fullres", "fold_all", "checkpoint_final.pth"))
    assert not_preprocessed.returncode == 1 and "nnUNetPlans_3d_lowres" in not_preprocessed.stderr
    assert other_plans.returncode == 1 and "nnUNetResEncUNetLPlans.json" in other_plans.stderr
    assert bad_trainer.returncode == 1 and "Could not find requested nnunet trainer MyTrainer" in bad_trainer.stderr
    assert out_of_memory.returncode == 1 and "CUDA out of memory" in out_of_memory.stderr
    assert "Epoch 1" in out_of_memory.stdout
    assert not os.path.exists(os.path.join(roots["nnUNet_results"], NAME, "nnUNetTrainer__nnUNetPlans__3d_fullres", "fold_2", "checkpoint_final.pth"))


def test_prediction_writes_label_maps_on_the_input_grid(roots, tmp_path):
    preprocess(roots)
    assert run("nnUNetv2_train", "42", "3d_fullres", "0", roots=roots, env={"ORTHANCSEG_STANDIN_EPOCHS": "1"}).returncode == 0
    images = tmp_path / "imagesTs"
    write_nifti(str(images / "new_000_0000.nii.gz"), (np.arange(8 * 8 * 4).reshape(8, 8, 4)).astype(np.int16))
    out = tmp_path / "predictions"

    result = run("nnUNetv2_predict", "-i", str(images), "-o", str(out), "-d", "42", "-c", "3d_fullres", "-f", "0", "-npp", "1", "-nps", "1",
                 roots=roots)
    missing_fold = run("nnUNetv2_predict", "-i", str(images), "-o", str(out), "-d", "42", "-c", "3d_fullres", "-f", "1", roots=roots)

    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["dataset.json", "new_000.nii.gz", "plans.json", "predict_from_raw_data_args.json"]
    prediction = nib.load(str(out / "new_000.nii.gz"))
    source = nib.load(str(images / "new_000_0000.nii.gz"))
    assert prediction.shape == source.shape and np.allclose(prediction.affine, source.affine)
    assert prediction.get_data_dtype() == np.uint8
    assert set(np.unique(np.asanyarray(prediction.dataobj)).tolist()) == {0, 1, 2}
    assert missing_fold.returncode == 1 and "FileNotFoundError" in missing_fold.stderr and "fold_1/checkpoint_final.pth" in missing_fold.stderr


def test_prediction_modes_steer_empty_failing_and_off_grid_predictions(roots, tmp_path):
    preprocess(roots)
    assert run("nnUNetv2_train", "42", "3d_fullres", "0", roots=roots, env={"ORTHANCSEG_STANDIN_EPOCHS": "1"}).returncode == 0
    images = tmp_path / "imagesTs"
    write_nifti(str(images / "new_000_0000.nii.gz"), (np.arange(8 * 8 * 4).reshape(8, 8, 4)).astype(np.int16))
    mode_file = tmp_path / "mode"
    copies = tmp_path / "copies"
    env = {"ORTHANCSEG_STANDIN_PREDICT_MODE_FILE": str(mode_file), "ORTHANCSEG_STANDIN_PREDICTIONS": str(copies)}

    def predict(mode, out):
        mode_file.write_text(mode)
        return run("nnUNetv2_predict", "-i", str(images), "-o", str(tmp_path / out), "-d", "42", "-c", "3d_fullres", "-f", "0", roots=roots, env=env)

    assert predict("empty", "empty").returncode == 0
    assert not np.asanyarray(nib.load(str(tmp_path / "empty" / "new_000.nii.gz")).dataobj).any()
    assert np.array_equal(np.asanyarray(nib.load(str(copies / "new_000.nii.gz")).dataobj), np.zeros((8, 8, 4), np.uint8))
    failed = predict("fail", "failed")
    assert failed.returncode == 1 and "RuntimeError: Error(s) in loading state_dict" in failed.stderr
    assert predict("off-grid", "shifted").returncode == 0
    shifted = nib.load(str(tmp_path / "shifted" / "new_000.nii.gz"))
    source = nib.load(str(images / "new_000_0000.nii.gz"))
    assert np.allclose(shifted.affine[:3, 3], source.affine[:3, 3] + 5.0)
    assert predict("nonsense", "nonsense").returncode == 1


def test_every_invocation_records_its_start_and_its_end_even_when_it_fails(roots, tmp_path):
    starts, ends = tmp_path / "starts.jsonl", tmp_path / "ends.jsonl"
    env = {"ORTHANCSEG_STANDIN_RECORD": str(starts), "ORTHANCSEG_STANDIN_RECORD_ENDS": str(ends)}

    assert run("nnUNetv2_plan_and_preprocess", "-d", "42", "-c", "3d_fullres", "-np", "1", "-npfp", "1", roots=roots, env=env).returncode == 0
    assert run("nnUNetv2_train", "42", "3d_fullres", "7", roots=roots, env=env).returncode != 0

    started = [json.loads(line) for line in starts.read_text().splitlines()]
    ended = {e["pid"]: e["ended"] for e in map(json.loads, ends.read_text().splitlines())}
    assert [s["argv"][0] for s in started] == ["nnUNetv2_plan_and_preprocess", "nnUNetv2_train"]
    assert all(s["started"] <= ended[s["pid"]] for s in started)
