import pytest

from analytics.cli import UserError, json_option


def test_json_option_inline_file_and_errors(tmp_path):
    assert json_option('{"op": "and", "conditions": []}', "--rules") == {"op": "and", "conditions": []}
    f = tmp_path / "rules.json"
    f.write_text('[1, 2]', encoding="utf-8")
    assert json_option(f"@{f}", "--rules") == [1, 2]
    with pytest.raises(UserError, match=r"^no such file: .*missing\.json$"):
        json_option(f"@{tmp_path / 'missing.json'}", "--rules")
    with pytest.raises(UserError, match=r"^--definition is not valid JSON: Expecting"):
        json_option("{op: and}", "--definition")
