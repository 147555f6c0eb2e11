"""zoo.data.readers on tiny datasets written in the real layouts: right images, labels, ignore regions, boxes, and
errors naming the missing file or directory."""

from pathlib import Path

import numpy as np
import pytest
import real_layouts
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from zoo.data import readers
from zoo.data.classes import ADE20K_CLASSES, CITYSCAPES_CLASSES, VOC_CLASSES


def _pixels(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


def _check_segmentation_item(dataset, index: int, expected: np.ndarray) -> None:
    image, mask = dataset[index]
    assert type(image) is tv_tensors.Image and image.dtype == torch.uint8 and image.shape[0] == 3
    assert type(mask) is tv_tensors.Mask and mask.dtype == torch.int64
    assert torch.equal(image.as_subclass(torch.Tensor), _pixels(dataset.pairs[index][0]))
    assert torch.equal(mask.as_subclass(torch.Tensor), torch.from_numpy(expected))


def test_class_names_are_mmsegmentations():
    assert len(ADE20K_CLASSES) == 150 and len(VOC_CLASSES) == 21 and len(CITYSCAPES_CLASSES) == 19
    assert ADE20K_CLASSES[:3] == ("wall", "building", "sky") and ADE20K_CLASSES[-1] == "flag"
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[-1] == "tvmonitor"
    assert CITYSCAPES_CLASSES[13] == "car" and CITYSCAPES_CLASSES[-1] == "bicycle"


def test_ade20k_reduces_the_zero_label(tmp_path):
    expected = real_layouts.write_ade20k(tmp_path)
    for root in (tmp_path, tmp_path / "ADEChallengeData2016"):  # the folder or its parent
        val = readers.ADE20K(root, "val")
        assert len(val) == 2 and val.classes == ADE20K_CLASSES
        for index, (image_file, _) in enumerate(val.pairs):
            _check_segmentation_item(val, index, expected[image_file.stem])
    image, mask = val[0]
    assert mask[0, :3].tolist() == [255, 0, 149]  # void, first class, last class
    assert int(mask[mask != 255].max()) <= 149
    assert len(readers.ADE20K(tmp_path, "train")) == 1


def test_voc_reads_palette_indices_borders_and_the_augmented_set(tmp_path):
    expected = real_layouts.write_voc(tmp_path)
    val = readers.VOCSegmentation(tmp_path, "val")
    assert [p[0].stem for p in val.pairs] == ["2007_000033", "2007_000042"]
    with Image.open(val.pairs[0][1]) as png:
        assert png.mode == "P"  # the indices are read, not the colors
    for index, (image_file, _) in enumerate(val.pairs):
        _check_segmentation_item(val, index, expected[image_file.stem])
    _, mask = val[0]
    assert (mask[0] == 255).all() and (mask[:, -1] == 255).all()  # borders stay ignored
    trainaug = readers.VOCSegmentation(tmp_path / "VOCdevkit", "trainaug")  # train.txt + aug.txt, deduplicated
    assert [(p[0].stem, p[1].parent.name) for p in trainaug.pairs] == [
        ("2007_000032", "SegmentationClass"),
        ("2008_000002", "SegmentationClassAug"),
    ]
    _check_segmentation_item(trainaug, 1, expected["2008_000002"])
    assert readers.VOCSegmentation(tmp_path / "VOCdevkit" / "VOC2012", "train").classes == VOC_CLASSES


def test_cityscapes_maps_label_ids_when_train_ids_are_absent(tmp_path):
    expected = real_layouts.write_cityscapes(tmp_path)
    val = readers.CityscapesSegmentation(tmp_path, "val")
    assert [p[1].name for p in val.pairs] == [
        "frankfurt_000000_000294_gtFine_labelIds.png",
        "lindau_000000_000019_gtFine_labelTrainIds.png",
    ]
    for index, (image_file, _) in enumerate(val.pairs):
        _check_segmentation_item(val, index, expected[image_file.name[: -len("_leftImg8bit.png")]])
    table = readers.cityscapes_train_id_table()
    for label_id, train_id in real_layouts.CITYSCAPES_IDS.items():
        assert table[label_id] == train_id
    assert sorted(int(i) for i in np.flatnonzero(table != 255)) == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24,
                                                                    25, 26, 27, 28, 31, 32, 33]  # fmt: skip


def test_seg_folder_with_class_names_and_transforms(tmp_path):
    expected = real_layouts.write_seg_folder(tmp_path, count=3)
    dataset = readers.SegmentationFolder(tmp_path, "train")
    assert dataset.classes == tuple(real_layouts.SEG_FOLDER_CLASSES) and len(dataset) == 3
    for index, (image_file, _) in enumerate(dataset.pairs):
        _check_segmentation_item(dataset, index, expected[image_file.stem])
    flipped = readers.SegmentationFolder(tmp_path, "val", transforms=v2.RandomHorizontalFlip(p=1.0))
    image, mask = flipped[0]
    plain_image, plain_mask = dataset[0]
    assert torch.equal(image, plain_image.flip(-1)) and torch.equal(mask, plain_mask.flip(-1))


def test_coco_detection_through_torchvision(tmp_path):
    expected = real_layouts.write_coco(tmp_path)
    dataset = readers.CocoDetection(tmp_path, "val")
    assert dataset.classes == expected["classes"] and dataset.category_ids == (0, 1, 18) and len(dataset) == 2
    for index in range(2):
        image, target = dataset[index]
        assert type(image) is tv_tensors.Image and image.dtype == torch.uint8
        boxes = target["boxes"]
        assert type(boxes) is tv_tensors.BoundingBoxes and boxes.format == tv_tensors.BoundingBoxFormat.XYXY
        assert tuple(boxes.canvas_size) == tuple(image.shape[-2:]) and boxes.dtype == torch.float32
        assert boxes.reshape(-1, 4).tolist() == expected["boxes"][index]
        assert target["labels"].tolist() == expected["labels"][index]
        assert target["iscrowd"].tolist() == expected["iscrowd"][index]


def test_voc_detection_marks_difficult_objects(tmp_path):
    expected = real_layouts.write_voc_detection(tmp_path)
    for root in (tmp_path, tmp_path / "VOCdevkit", tmp_path / "VOCdevkit" / "VOC2007"):
        dataset = readers.VOCDetection(root, "val")
        assert dataset.year == "2007" and len(dataset) == 1
        image, target = dataset[0]
        assert image.shape == (3, 24, 32)
        assert target["boxes"].tolist() == expected["boxes"]
        assert [VOC_CLASSES[k] for k in target["labels"]] == ["dog", "person"]
        assert target["labels"].tolist() == expected["labels"] and target["iscrowd"].tolist() == expected["iscrowd"]


def test_image_folder(tmp_path):
    classes = real_layouts.write_image_folder(tmp_path)
    dataset = readers.ImageFolderClassification(tmp_path, "train")
    assert dataset.classes == tuple(classes) and len(dataset) == 4
    image, label = dataset[3]
    assert type(image) is tv_tensors.Image and image.shape == (3, 11, 12) and label == 1


def test_open_dataset_by_name(tmp_path):
    real_layouts.write_seg_folder(tmp_path, count=2)
    dataset = readers.open_dataset("seg-folder", tmp_path, "train")
    assert isinstance(dataset, readers.SegmentationFolder) and dataset.task == "segmentation"
    assert {name: cls.task for name, cls in readers.READERS.items()} == {
        "ade20k": "segmentation", "voc2012": "segmentation", "cityscapes": "segmentation",
        "seg-folder": "segmentation", "coco": "detection", "voc-det": "detection", "imagefolder": "classification",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        readers.open_dataset("kitti", tmp_path, "train")


# ------------------------------------------------------------------------------------------- bad layouts
def _remove(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()
    else:
        path.unlink()


WRITERS = {
    "ade20k": real_layouts.write_ade20k,
    "voc2012": real_layouts.write_voc,
    "cityscapes": real_layouts.write_cityscapes,
    "seg-folder": real_layouts.write_seg_folder,
    "coco": real_layouts.write_coco,
    "voc-det": real_layouts.write_voc_detection,
}
CITY = "gtFine/val/frankfurt/frankfurt_000000_000294"


@pytest.mark.parametrize(
    "name, missing, split",
    [
        ("ade20k", "ADEChallengeData2016/annotations/validation", "val"),
        ("ade20k", "ADEChallengeData2016/annotations/validation/ADE_val_00000002.png", "val"),
        ("voc2012", "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt", "val"),
        ("voc2012", "VOCdevkit/VOC2012/JPEGImages/2007_000042.jpg", "val"),
        ("voc2012", "VOCdevkit/VOC2012/SegmentationClass/2007_000033.png", "val"),
        ("cityscapes", "gtFine/val", "val"),
        ("cityscapes", f"{CITY}_gtFine_labelIds.png", "val"),
        ("seg-folder", "classes.txt", "train"),
        ("seg-folder", "masks/img_01.png", "train"),
        ("coco", "annotations/instances_val2017.json", "val"),
        ("voc-det", "VOCdevkit/VOC2007/ImageSets/Main/val.txt", "val"),
    ],
)
def test_a_missing_file_or_directory_is_named(tmp_path, name, missing, split):
    WRITERS[name](tmp_path)
    _remove(tmp_path / missing)
    with pytest.raises(FileNotFoundError) as error:
        readers.open_dataset(name, tmp_path, split)
    message = str(error.value)
    assert str(tmp_path / missing) in message and "\n" not in message, message


def test_bad_label_files_are_named(tmp_path):
    real_layouts.write_seg_folder(tmp_path, count=2)
    mask = tmp_path / "masks" / "img_00.png"
    labels = np.asarray(Image.open(mask)).copy()
    labels[5, 5] = 7  # beyond the 3 classes, not 255
    Image.fromarray(labels).save(mask)
    dataset = readers.SegmentationFolder(tmp_path)
    with pytest.raises(ValueError, match=r"img_00.png: label values \[7\] are outside 0..2"):
        dataset[0]
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(mask)  # a color PNG
    with pytest.raises(ValueError, match="mode RGB"):
        dataset[0]
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        readers.ADE20K(tmp_path / "no_such_dir")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        readers.ADE20K(tmp_path, "test")
