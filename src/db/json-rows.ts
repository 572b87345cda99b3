import { getTableColumns, type InferSelectModel, type Table } from 'drizzle-orm';

/**
 * Rows of `table` read as JSON inside another statement (`row_to_json`, `json_agg`), mapped the way
 * Drizzle maps the same columns read directly: JSON keys are the database's column names, and each
 * value goes through its column's driver mapping (a timestamp's ISO text becomes a `Date`, and so on).
 * The drivers differ in whether they parse JSON themselves; text is parsed here.
 */
export function rowsFromJson<T extends Table>(table: T, value: unknown): InferSelectModel<T>[] {
  const parsed = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  if (parsed === null || parsed === undefined) return [];
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const columns = Object.entries(getTableColumns(table));
  return list.map((json: Record<string, unknown>) => {
    const row: Record<string, unknown> = {};
    for (const [key, column] of columns) {
      const v = json[column.name];
      row[key] = v === null || v === undefined ? null : column.mapFromDriverValue(v);
    }
    return row as InferSelectModel<T>;
  });
}
