"""What the stand-in nnUNetv2_* commands share.

nnU-Net cannot be installed here, so the tests run these instead. They check what nnU-Net v2 checks (arguments,
the three folder variables, the dataset and its integrity) and fail with nnU-Net's own wording, take a little time,
print what nnU-Net prints, and write the files nnU-Net writes (../shared/reference/nnunet.md). Behaviour the tests
steer through the environment:

  ORTHANCSEG_STANDIN_STEP_SECONDS   pause per step/epoch (default 0.2)
  ORTHANCSEG_STANDIN_EPOCHS         epochs nnUNetv2_train runs (default 3)
  ORTHANCSEG_STANDIN_FAIL_FOLD      nnUNetv2_train of this fold fails in its second epoch (a CUDA out-of-memory error)
  ORTHANCSEG_STANDIN_RECORD         a file each invocation appends one JSON line to (argv, cwd, CUDA_VISIBLE_DEVICES, pid)
  ORTHANCSEG_STANDIN_RECORD_ENDS    a file each invocation appends {"pid", "ended"} to as it exits, so a test can tell which ran at once
  ORTHANCSEG_STANDIN_PREDICT_SECONDS  pause per case of nnUNetv2_predict (default: ORTHANCSEG_STANDIN_STEP_SECONDS)
  ORTHANCSEG_STANDIN_MISSED_VOXELS_FILE  a file holding how many voxels of each label validation predictions miss (default 1)
  ORTHANCSEG_STANDIN_PREDICT_MODE_FILE  a file nnUNetv2_predict reads at each start (a test changes it between predictions):
                                    "labels" (or no file) predicts every label, "empty" nothing, "fail" fails as a broken model does,
                                    "off-grid" writes its prediction on a grid shifted by 5 mm
  ORTHANCSEG_STANDIN_PREDICTIONS    a folder nnUNetv2_predict copies each prediction into, so a test can compare what came back
"""
import datetime
import glob
import json
import os
import re
import shutil
import sys
import time

import nibabel as nib
import numpy as np

FOLDER_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
# The planners nnU-Net ships and the plans each writes (documentation/resenc_presets.md).
PLANS_OF_PLANNER = {
    "ExperimentPlanner": "nnUNetPlans",
    "nnUNetPlannerResEncM": "nnUNetResEncUNetMPlans",
    "nnUNetPlannerResEncL": "nnUNetResEncUNetLPlans",
    "nnUNetPlannerResEncXL": "nnUNetResEncUNetXLPlans",
}


class NnUnetError(Exception):
    """An error nnU-Net would raise; its text is printed as Python prints the traceback's last line."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def run(main) -> None:
    record()
    try:
        main()
    except NnUnetError as e:
        print("Traceback (most recent call last):", file=sys.stderr)
        print(f"{e.kind}: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        record_end()


def record() -> None:
    path = os.environ.get("ORTHANCSEG_STANDIN_RECORD")
    if path:
        line = {
            "argv": [os.path.basename(sys.argv[0])] + sys.argv[1:],
            "cwd": os.getcwd(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid(),
            "started": time.time(),
        }
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def record_end() -> None:
    path = os.environ.get("ORTHANCSEG_STANDIN_RECORD_ENDS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"pid": os.getpid(), "ended": time.time()}) + "\n")


def step() -> None:
    time.sleep(float(os.environ.get("ORTHANCSEG_STANDIN_STEP_SECONDS", "0.2")))


def log(line: str, log_file=None) -> None:
    """nnU-Net's print_to_log_file: every line starts with a timestamp."""
    stamped = f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S.%f')}: {line}"
    print(stamped, flush=True)
    if log_file is not None:
        log_file.write(stamped + "\n")
        log_file.flush()


def folders() -> dict:
    """The three folder variables; nnU-Net warns about each missing one (nnunetv2/paths.py) and then cannot work."""
    missing = [v for v in FOLDER_VARIABLES if not os.environ.get(v)]
    for variable in missing:
        print(f"{variable} is not defined and nnU-Net can only be used on data for which preprocessed files are already "
              "present on your system. nnU-Net cannot be used for experiment planning and preprocessing like this. If this "
              "is not intended, please read documentation/setting_up_paths.md for information on how to set this up properly.")
    if missing:
        raise NnUnetError("TypeError", "expected str, bytes or os.PathLike object, not NoneType")
    return {v: os.environ[v] for v in FOLDER_VARIABLES}


def dataset_name(dataset_name_or_id: str, paths: dict) -> str:
    """maybe_convert_to_dataset_name: DatasetNNN_Name from an id, searched in raw, preprocessed and results."""
    if dataset_name_or_id.startswith("Dataset"):
        return dataset_name_or_id
    try:
        dataset_id = int(dataset_name_or_id)
    except ValueError:
        raise NnUnetError("ValueError", f"dataset_name_or_id was a string and did not start with 'Dataset' so we tried to convert it to a "
                          f"dataset ID (int). That failed, however. Please give an integer number ('1', '2', etc) or a correct dataset "
                          f"name. Your input: {dataset_name_or_id}")
    prefix = f"Dataset{dataset_id:03d}"
    names = set()
    for root in paths.values():
        names.update(os.path.basename(p) for p in glob.glob(os.path.join(root, prefix + "_*")) if os.path.isdir(p))
    if len(names) > 1:
        raise NnUnetError("RuntimeError", f"More than one dataset name found for dataset id {dataset_id}. Please correct that. "
                          f"(I looked in the following folders:\n{paths['nnUNet_raw']}\n{paths['nnUNet_preprocessed']}\n{paths['nnUNet_results']}")
    if not names:
        raise NnUnetError("RuntimeError", f"Could not find a dataset with the ID {dataset_id}. Make sure the requested dataset ID exists and "
                          "that nnU-Net knows where raw and preprocessed data are located (see Documentation - Installation). Here are "
                          f"your currently defined folders:\nnnUNet_preprocessed={paths['nnUNet_preprocessed']}\n"
                          f"nnUNet_results={paths['nnUNet_results']}\nnnUNet_raw={paths['nnUNet_raw']}\n"
                          "If something is not right, adapt your environment variables.")
    return names.pop()


def load_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_json(data, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=False, indent=4)


def training_cases(raw: str, dataset: dict) -> list:
    ending = dataset["file_ending"]
    files = sorted(glob.glob(os.path.join(raw, "imagesTr", "*" + ending)))
    return sorted({os.path.basename(f)[: -(len(ending) + 5)] for f in files if re.search(r"_\d\d\d\d" + re.escape(ending) + "$", f)})


def verify_dataset_integrity(raw: str) -> None:
    """The checks of nnunetv2/experiment_planning/verify_dataset_integrity.py, with its messages, in its order."""
    if not os.path.isfile(os.path.join(raw, "dataset.json")):
        raise NnUnetError("AssertionError", f"There needs to be a dataset.json file in folder, folder={raw}")
    dataset = load_json(os.path.join(raw, "dataset.json"))
    if not (os.path.isdir(os.path.join(raw, "imagesTr")) and os.path.isdir(os.path.join(raw, "labelsTr"))):
        raise NnUnetError("AssertionError", f"There needs to be a imagesTr and labelsTr subfolder in folder, folder={raw}")
    required = ["labels", "channel_names", "numTraining", "file_ending"]
    missing = [k for k in required if k not in dataset]
    if missing:
        raise NnUnetError("AssertionError", f"not all required keys are present in dataset.json.\n\nRequired: \n{required}\n\n"
                          f"Present: \n{list(dataset.keys())}\n\nMissing: \n{missing}\n\nUnused by nnU-Net:\n{[]}")
    cases = training_cases(raw, dataset)
    if len(cases) != dataset["numTraining"]:
        raise NnUnetError("AssertionError", f"Did not find the expected number of training cases ({dataset['numTraining']}). "
                          f"Found {len(cases)} instead.\nExamples: {cases[:5]}")
    ending = dataset["file_ending"]
    missing_labels = [c for c in cases if not os.path.isfile(os.path.join(raw, "labelsTr", c + ending))]
    if missing_labels:
        raise NnUnetError("AssertionError", f"not all training cases have a label file in labelsTr. Fix that. Missing: {missing_labels}")
    expected = sorted(v for v in dataset["labels"].values() if isinstance(v, int))
    if expected and not all(b - a == 1 for a, b in zip(expected, expected[1:])):
        raise NnUnetError("AssertionError", "Labels must be in consecutive order (0, 1, 2, ...). The labels "
                          f"{np.array(expected)} do not satisfy this restriction")
    label_errors = []
    for case in cases:
        path = os.path.join(raw, "labelsTr", case + ending)
        found = np.unique(np.asanyarray(nib.load(path).dataobj))
        if not set(found.tolist()) <= set(expected):
            print(f"Error: Unexpected labels found in file {path}.\nExpected: {expected}\nFound: {found.astype(float)}")
            label_errors.append(case)
    if label_errors:
        raise NnUnetError("RuntimeError", "Some segmentation images contained unexpected labels. Please check text output above to see "
                          "which one(s).")
    shape_errors = []
    channels = len(dataset["channel_names"])
    for case in cases:
        images = sorted(glob.glob(os.path.join(raw, "imagesTr", case + "_[0-9][0-9][0-9][0-9]" + ending)))
        seg = nib.load(os.path.join(raw, "labelsTr", case + ending))
        if len(images) != channels:
            print(f"Error: Unexpected number of modalities. \nExpected: {channels}. \nGot: {len(images)}. \nImages: {images}\n")
            shape_errors.append(case)
            continue
        for image_path in images:
            image = nib.load(image_path)
            if image.shape != seg.shape:
                print(f"Error: Shape mismatch between segmentation and corresponding images. \nShape images: {image.shape}. "
                      f"\nShape seg: {seg.shape}. \nImage files: {images}. \nSeg file: {seg.get_filename()}\n")
                shape_errors.append(case)
            elif not np.allclose(image.header.get_zooms(), seg.header.get_zooms()):
                print(f"Error: Spacing mismatch between segmentation and corresponding images. \nSpacing images: "
                      f"{image.header.get_zooms()}. \nSpacing seg: {seg.header.get_zooms()}. \nImage files: {images}. \nSeg file: {seg.get_filename()}\n")
                shape_errors.append(case)
            elif not np.allclose(image.affine, seg.affine, atol=1e-4):
                print(f"WARNING: Affine is not the same for image and seg! \nAffine image: {image.affine} \nAffine seg: {seg.affine}\n"
                      f"Image files: {images}. \nSeg file: {seg.get_filename()}.\nThis can be a problem but doesn't have to be. "
                      "Please run nnUNetv2_plot_overlay_pngs to verify if everything is OK!\n")
            if np.isnan(np.asanyarray(image.dataobj)).any():
                print(f"Images contain NaN pixel values. You need to fix that by replacing NaN values with something that makes sense for your images!\nImages:\n{images}")
                shape_errors.append(case)
    if shape_errors:
        raise NnUnetError("RuntimeError", "Some images have errors. Please check text output above to see which one(s) and what's going on.")
    print("\n####################")
    print("verify_dataset_integrity Done. \nIf you didn't see any error messages then your dataset is most likely OK!")
    print("####################\n")


def write_label_like(reference_path: str, target_path: str, data=None) -> None:
    """A uint8 label map on the reference image's grid, as nnU-Net's exports are."""
    reference = nib.load(reference_path)
    if data is None:
        data = np.zeros(reference.shape, dtype=np.uint8)
    image = nib.Nifti1Image(data.astype(np.uint8), reference.affine, reference.header)
    image.set_data_dtype(np.uint8)
    os.makedirs(os.path.dirname(target_path), exist_ok=True)
    nib.save(image, target_path)


def metrics(reference: np.ndarray, prediction: np.ndarray, label: int) -> dict:
    ref, pred = reference == label, prediction == label
    tp, fp, fn = int((ref & pred).sum()), int((~ref & pred).sum()), int((ref & ~pred).sum())
    tn = int(ref.size - tp - fp - fn)
    dice = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    iou = tp / (tp + fp + fn) if tp + fp + fn else float("nan")
    return {"Dice": dice, "FN": fn, "FP": fp, "IoU": iou, "TN": tn, "TP": tp, "n_pred": tp + fp, "n_ref": tp + fn}
