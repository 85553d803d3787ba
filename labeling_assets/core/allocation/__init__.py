"""One allocator for the labeling queue: each free slot buys the most expected accuracy per unit of cost."""
