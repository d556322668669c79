import { provideTestPostgres } from "../postgres-global-setup.js";

export default function setup(): Promise<() => Promise<void>> {
  return provideTestPostgres();
}
