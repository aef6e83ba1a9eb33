/** D-Bus object path syntax (spec: "/" or "/" + [A-Za-z0-9_]+ elements separated by "/"). */
export function isObjectPathValid(p: string): boolean {
  return p === '/' || /^(\/[A-Za-z0-9_]+)+$/.test(p);
}
