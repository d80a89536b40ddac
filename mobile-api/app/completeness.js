// completeness.js: the feedback sheet's completeness rule, the same as the server's
// (schema.SheetCompleteness in schema/sheet.go). Both are tested against one file of vectors,
// schema/testdata/sheet-completeness.json.

/**
 * Returns {complete, missing}: the required items that are not filled in, in the order of
 * requirable (the server's SheetRequirable), then any others in the order required names them.
 * @param {object} sheet the sheet as the device sees it (pending edits included)
 * @param {string[]} required the sheet_required setting
 * @param {string[]} requirable the server's order of the items
 */
export function sheetCompleteness(sheet, required, requirable) {
  const want = new Set(required);
  const order = [];
  for (const r of requirable) if (want.has(r)) { order.push(r); want.delete(r); }
  for (const r of required) if (want.has(r)) { order.push(r); want.delete(r); }
  const missing = order.filter((name) => isEmpty(sheet[name]));
  return { complete: missing.length === 0, missing };
}

/** Not filled in: absent, null, blank text, zero (unrated), false or an empty list. */
function isEmpty(v) {
  if (v === undefined || v === null) return true;
  if (typeof v === 'string') return v.trim() === '';
  if (typeof v === 'number') return v === 0;
  if (typeof v === 'boolean') return !v;
  if (Array.isArray(v)) return v.length === 0;
  return false;
}
