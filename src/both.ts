// Runs independent work at once, but like sequential code: nothing is left running when it returns or throws.

/** Awaits two tasks started together; once both have ended, returns both results or throws the first task's failure. */
export async function both<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}
