// JSON text for the agent's answers and events, where some numbers must be written as floats (`42.0`, `100.0`): the
// engine is Java, casts a job's progress to Double, and a JSON number without a decimal point reaches it as an Integer.
// JSON.stringify writes 100 for 100.0, so those numbers are wrapped in JsonFloat and written by toJsonText.

/** A number that toJsonText always writes with a decimal point or an exponent; JSON.stringify writes it as a plain number. */
export class JsonFloat {
  constructor(readonly value: number) {}

  /** What JSON.stringify (logs, tests) sees: the bare number. */
  toJSON(): number {
    return this.value;
  }
}

/** The text of a float: a finite number always with a fraction or exponent (100 -> 100.0); NaN and infinities as null. */
export function floatText(value: number): string {
  if (!Number.isFinite(value)) return 'null';
  const text = JSON.stringify(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

/** Whether a value is left out of an object (and written as null in an array), as JSON.stringify does. */
function isSkipped(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

/** JSON text of a value, as JSON.stringify writes it, except that every JsonFloat is written as a float. */
export function toJsonText(value: unknown): string {
  if (value instanceof JsonFloat) return floatText(value.value);
  if (value === null || typeof value !== 'object') return isSkipped(value) ? 'null' : (JSON.stringify(value) as string);
  if (Array.isArray(value)) return `[${value.map((item) => (isSkipped(item) ? 'null' : toJsonText(item))).join(',')}]`;
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return toJsonText(withToJson.toJSON());
  const members: string[] = [];
  for (const [key, member] of Object.entries(value)) {
    if (!isSkipped(member)) members.push(`${JSON.stringify(key)}:${toJsonText(member)}`);
  }
  return `{${members.join(',')}}`;
}
