# comparison.csv reads in R with read.csv and readr::read_csv, no options, into a data frame of the
# right types, and its figures hang together (difference = after - before, intervals around them).
# Usage: Rscript tests/r/read_comparison.R out/comparison.csv
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]

check <- function(df, reader) {
  stopifnot(nrow(df) > 0)
  for (col in c("tariff_id", "supplier")) stopifnot(is.character(df[[col]]))
  for (col in c("hypothetical", "on_sale_before", "on_sale_after")) stopifnot(is.logical(df[[col]]))
  numeric <- setdiff(names(df), c("tariff_id", "supplier", "hypothetical", "on_sale_before", "on_sale_after"))
  stopifnot(length(numeric) == 39)
  for (col in numeric) {
    if (!is.numeric(df[[col]])) stop(sprintf("%s: column %s is %s, not numeric", reader, col, class(df[[col]])[1]))
  }
  stopifnot(all(df$impressions_difference == df$impressions_after - df$impressions_before))
  for (m in c("page1_share", "rank1_share", "expected_clicks")) {
    b <- df[[paste0(m, "_before")]]; a <- df[[paste0(m, "_after")]]; d <- df[[paste0(m, "_difference")]]
    stopifnot(all(abs(d - (a - b)) < 1e-6 * pmax(1, abs(a))))
    lo <- df[[paste0(m, "_difference_lo")]]; hi <- df[[paste0(m, "_difference_hi")]]
    # No interval (NA, both ends) where too few visits hold the figure; else one around it.
    stopifnot(all(is.na(lo) == is.na(hi)), all(lo <= d + 1e-9, na.rm = TRUE), all(d <= hi + 1e-9, na.rm = TRUE))
  }
  stopifnot(any(df$hypothetical), any(df$impressions_difference < 0))
  cat(sprintf("%s: %d tariffs, %d hypothetical, %d losing impressions: ok\n", reader, nrow(df),
              sum(df$hypothetical), sum(df$impressions_difference < 0)))
}

check(read.csv(path), "read.csv")
check(as.data.frame(readr::read_csv(path, show_col_types = FALSE)), "readr::read_csv")
