# The impressions CSV reads in R with read.csv and readr::read_csv, no options, into the right types.
# Usage: Rscript tests/r/read_impressions.R out/impressions.csv
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]

check <- function(df, reader) {
  stopifnot(nrow(df) > 0)
  # Format 2 (format_version = 2). visit_date is text to read.csv and a Date to readr.
  expect <- c(profile = "numeric", visit_id = "character", visit_date = "date", rank = "numeric",
              tariff_id = "character", supplier = "character", hypothetical = "logical",
              kind = "character", green = "logical", switchable = "logical",
              exit_fee_gbp = "numeric", annual_cost_gbp = "numeric",
              current_cost_gbp = "numeric", saving_gbp = "numeric", switch_cost_gbp = "numeric",
              region = "character", fuel = "character", meter = "character",
              payment_method = "character", fixed_only = "logical", green_only = "logical",
              no_exit_fees = "logical", switchable_only = "logical", filters_set = "logical",
              format_version = "numeric")
  stopifnot(identical(names(df), names(expect)))
  stopifnot(all(df$format_version == 2))
  stopifnot(all(df$kind %in% c("fixed", "variable")))
  stopifnot(all(!is.na(as.Date(df$visit_date))))
  stopifnot(all(df$filters_set == (df$fixed_only | df$green_only | df$no_exit_fees | df$switchable_only)))
  for (col in names(expect)) {
    ok <- if (expect[[col]] == "numeric") is.numeric(df[[col]])
          else if (expect[[col]] == "date") is.character(df[[col]]) || is(df[[col]], "Date")
          else is(df[[col]], expect[[col]])
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
