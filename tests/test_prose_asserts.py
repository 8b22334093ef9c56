"""Tests check data, not English (issue 28): at most 3% of the asserts under tests/ compare against a sentence of
four words or more (tools/prose_asserts.py counts them)."""
import importlib.util
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "prose_asserts.py"
spec = importlib.util.spec_from_file_location("prose_asserts", TOOL)
prose = sys.modules["prose_asserts"] = importlib.util.module_from_spec(spec)   # dataclasses look it up
spec.loader.exec_module(prose)


def test_at_most_3_percent_of_asserts_compare_against_a_sentence():
    found = prose.survey()
    offending = [f"{a.path.name}:{a.line}" for a in found if a.sentence is not None]
    assert len(found) > 1000 and prose.share(found) <= prose.MAX_SHARE == 0.03, offending


def test_the_counter_counts_sentences_and_not_data(tmp_path):
    (tmp_path / "test_x.py").write_text(
        'import pytest\n'
        'def test_a(out):\n'
        '    assert "the run was stopped early" in out            # a sentence: 5 words\n'
        '    assert f"{3} runs were stopped too" in out            # an f-string\'s literal part: 4 words\n'
        '    assert out == "--max-steps 2 seed 0", "a failure message is not counted at all"\n'
        '    assert "ValueError: boom" in out and "ablation_v2 glue_v2 init_v2 size_v2" in out\n'
        '    with pytest.raises(ValueError, match="must be one of these"):\n'
        '        pass\n'
        '    with pytest.raises(ValueError, match="lr 1e-3"):\n'
        '        pass\n')
    found = prose.survey(tmp_path)
    assert [(a.line, a.sentence) for a in found] == [
        (3, "the run was stopped early"), (4, " runs were stopped too"), (5, None), (6, None),
        (7, "must be one of these"), (9, None)]
    assert prose.share(found) == 3 / 6 and prose.main([str(tmp_path), "--quiet"]) == 1
