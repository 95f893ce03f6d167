//! Search: exactness against brute force, filters, the planner's min(k, matches).
