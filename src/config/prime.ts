// Primality for Maglev table sizes (M must be prime, Maglev NSDI'16 §3.4): the Maglev module's
// own test, so config validation and table building can never disagree.
export { isPrime } from '../lb/maglev.js';
