/** The function the worker benchmarks call: as cheap as a function gets. */
export function add(a: number, b: number): number {
  return a + b;
}
