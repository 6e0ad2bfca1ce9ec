// JSON for the Python libraries that read our files. JSON.stringify writes the number 6.0
// as `6`, which Python's json module reads back as an int, and some readers check types:
// transformers' BitsAndBytesConfig raises "llm_int8_threshold must be a float" on an int.
// stringifyJson writes the fields a reader types as float with a decimal point, as Python's
// json.dumps does (6.0, 0.0, 1e-06 stays an exponent form).
const MARK = '\u0000float:';

function floatText(x: number): string {
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/**
 * JSON text (2-space indent, trailing newline) in which every finite number stored under a
 * key in `floatKeys`, at any depth, is written as a float.
 */
export function stringifyJson(value: unknown, floatKeys: Iterable<string> = []): string {
  const floats = new Set(floatKeys);
  const text = JSON.stringify(
    value,
    (key, v) => (floats.has(key) && typeof v === 'number' && Number.isFinite(v) ? `${MARK}${v}` : v),
    2,
  );
  return text.replace(/"\\u0000float:([^"]*)"/g, (_, n: string) => floatText(Number(n))) + '\n';
}

/**
 * How Python's json module would type each value of a JSON text: 'int' or 'float' by how
 * the number is written, else 'str', 'bool', 'null', 'list', 'dict'. Keys are paths joined
 * with '.' (list items by index). For tests that compare our files with a reference
 * library's field types.
 */
export function pythonJsonTypes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      out[path] = 'dict';
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        const k = str();
        ws();
        i++; // ':'
        value(path ? `${path}.${k}` : k);
        ws();
        if (text[i++] === '}') return;
      }
    }
    if (c === '[') {
      out[path] = 'list';
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (let n = 0; ; n++) {
        value(`${path}.${n}`);
        ws();
        if (text[i++] === ']') return;
      }
    }
    if (c === '"') {
      str();
      out[path] = 'str';
      return;
    }
    const m = /^(true|false|null|-?\d+(\.\d+)?([eE][-+]?\d+)?)/.exec(text.slice(i, i + 64))!;
    i += m[0].length;
    out[path] =
      m[1] === 'null' ? 'null' : m[1] === 'true' || m[1] === 'false' ? 'bool' : /[.eE]/.test(m[1]) ? 'float' : 'int';
  };
  value('');
  return out;
}
