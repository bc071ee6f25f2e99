//! Recovery when either side is lost: a rebuilt machine, a recreated history remote, two writers.
