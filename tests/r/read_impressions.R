# The impressions CSV reads in R with read.csv and readr::read_csv, no options, into the right types.
# Usage: Rscript tests/r/read_impressions.R out/impressions.csv
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]

check <- function(df, reader) {
  stopifnot(nrow(df) > 0)
  expect <- c(profile = "numeric", visit_id = "character", rank = "numeric", tariff_id = "character",
              supplier = "character", hypothetical = "logical", annual_cost_gbp = "numeric",
              current_cost_gbp = "numeric", saving_gbp = "numeric", region = "character",
              fuel = "character", meter = "character", payment_method = "character")
  stopifnot(identical(names(df), names(expect)))
  for (col in names(expect)) {
    ok <- if (expect[[col]] == "numeric") is.numeric(df[[col]]) else is(df[[col]], expect[[col]])
    if (!ok) stop(sprintf("%s: column %s is %s, expected %s", reader, col, class(df[[col]])[1], expect[[col]]))
  }
  stopifnot(any(df$hypothetical), !all(df$hypothetical))
  stopifnot(all(df$rank >= 1))
  known <- !is.na(df$saving_gbp)
  stopifnot(any(!known), any(known))
  stopifnot(all(abs(df$current_cost_gbp[known] - df$annual_cost_gbp[known] - df$saving_gbp[known]) < 0.005))
  # Quoted fields with commas and quotes survive.
  stopifnot(any(grepl(",", df$supplier, fixed = TRUE)))
  cat(sprintf("%s: %d rows, %d hypothetical, %d with NA saving: ok\n", reader, nrow(df),
              sum(df$hypothetical), sum(!known)))
}

check(read.csv(path), "read.csv")
check(as.data.frame(readr::read_csv(path, show_col_types = FALSE)), "readr::read_csv")
