"""Model cards: every field checked and every problem named; the built-in cards."""

from __future__ import annotations

import json

import pytest

from services.classifier.cards import CardError, read_card
from tests.support.served_models import BUILTIN_CARDS, BYO_LABELS, write_card


def test_the_builtin_cards_read_as_the_project_agreed(tmp_path):
    squeezenet = read_card(BUILTIN_CARDS / "squeezenet1.1.json")
    assert squeezenet.input.short_side == 256 and squeezenet.input.crop is None
    assert squeezenet.input.fixed_size is None  # fully convolutional: the whole image
    assert squeezenet.input.scale == pytest.approx(1 / 255)
    assert squeezenet.outputs == "logits" and squeezenet.max_pool_ceil
    assert squeezenet.input.trained_at == (224, 224)
    effnet = read_card(BUILTIN_CARDS / "efficientnet-lite0.json")
    assert effnet.input.short_side == 256 and effnet.input.crop == (224, 224)
    assert effnet.input.fixed_size == (224, 224)
    assert effnet.sha256 and len(effnet.sha256) == 64
    for card in (squeezenet, effnet):
        assert len(card.labels) == 1000 and card.labels[805] == "soccer ball"
        assert card.onnx.parent == BUILTIN_CARDS.resolve()


def test_labels_may_be_a_list_or_a_file_relative_to_the_card(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "names.txt").write_text("cat\ndog\n\n", encoding="utf-8")
    from_file = read_card(write_card(tmp_path / "a.json", labels="sub/names.txt"))
    assert from_file.labels == ("cat", "dog")
    from_list = read_card(write_card(tmp_path / "b.json"))
    assert from_list.labels == tuple(BYO_LABELS)
    assert from_list.onnx == (tmp_path / "b.onnx").resolve()
    assert from_list.input.layout == "NHWC" and from_list.input.color == "BGR"


BAD_FIELDS = [
    (
        {"input_fields": {"mean": [0.5, 0.5]}},
        "input.mean must be 3 numbers, one per channel (got 2 numbers)",
    ),
    ({"input_fields": {"std": [1, 0, 1]}}, "input.std[1] must be a finite positive number"),
    ({"input_fields": {"layout": "NWHC"}}, "input.layout must be NCHW or NHWC (got 'NWHC')"),
    ({"input_fields": {"color": "RGBA"}}, "input.color must be RGB or BGR (got 'RGBA')"),
    ({"input_fields": {"scale": 0}}, "input.scale must be a finite positive number"),
    ({"input_fields": {"short_side": 256}}, "input has both size and short_side"),
    ({"input_fields": {"size": None}}, "input needs one of size [h, w] or short_side n"),
    ({"input_fields": {"size": [64]}}, "input.size must be [height, width] (got [64])"),
    (
        {"input_fields": {"crop": [100, 10]}},
        "input.crop [100, 10] is larger than input.size [64, 64]",
    ),
    ({"input_fields": {"size": [0, 64]}}, "input.size[0] must be a whole number of pixels"),
    ({"input_fields": {"sise": [1, 1]}}, "unknown field input.'sise' (did you mean input.'size'?)"),
    ({"outputs": "softmax"}, "outputs must be logits or probabilities (got 'softmax')"),
    ({"name": "My Model"}, "name 'My Model' must be 1-64 characters of a-z"),
    ({"labels": []}, "labels must be a non-empty list of strings"),
    ({"labels": "absent.txt"}, "absent.txt: No such file or directory"),
    ({"license": "MIT"}, "unknown field 'license' (did you mean 'licence'?)"),
    ({"url": "ftp://example.org/m.onnx"}, "url must be an http(s) URL or null"),
    ({"sha256": "abc"}, "sha256 must be the file's SHA-256 as 64 hex digits"),
    ({"max_pool_ceil": "yes"}, "max_pool_ceil must be true or false"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_FIELDS)
def test_each_bad_field_is_named(tmp_path, fields, message):
    path = write_card(tmp_path / "bad.json", **fields)
    with pytest.raises(CardError) as err:
        read_card(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_every_problem_of_a_card_is_named_at_once(tmp_path):
    path = tmp_path / "many.json"
    card = json.loads(write_card(path).read_text())
    del card["title"]
    card["input"].update(mean=[1, 2], layout="CHW")
    card["outputs"] = "scores"
    path.write_text(json.dumps(card))
    with pytest.raises(CardError) as err:
        read_card(path)
    assert err.value.name == "many"
    assert err.value.problems == [
        "missing field 'title'",
        "input.layout must be NCHW or NHWC (got 'CHW')",
        "input.mean must be 3 numbers, one per channel (got 2 numbers)",
        "outputs must be logits or probabilities (got 'scores')",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "a card is a JSON object"),
        ("", "not valid JSON"),
    ],
)
def test_a_card_that_is_not_a_json_object_is_refused(tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(CardError, match=message):
        read_card(path)


def test_a_missing_or_huge_card_is_refused(tmp_path):
    with pytest.raises(CardError, match="cannot read the card"):
        read_card(tmp_path / "absent.json")
    huge = tmp_path / "huge.json"
    huge.write_text('{"title": "' + "x" * (1 << 20) + '"}')
    with pytest.raises(CardError, match="at most 1048576"):
        read_card(huge)
