//! Reading in batches while every core works on the last one: a file's
//! lines parsed at import, a table's records decoded at start.

/// Hands each batch `read` returns, until an empty one, to `process` on the
/// rayon pool, and its result to `take`, in order. While the pool processes
/// a batch, this thread reads the next and takes the result of the last:
/// reading or taking alone would leave every other core idle. A batch's
/// result is taken before an error reading the next is returned.
pub fn read_ahead<X: Sync, T: Send, E>(
    mut read: impl FnMut() -> Result<Vec<X>, E>,
    process: impl Fn(&[X]) -> T + Sync,
    mut take: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    let mut batch = read()?;
    let mut last = None;
    while !batch.is_empty() {
        let mut processed = None;
        let mut next = Ok(Vec::new());
        let mut taken = Ok(());
        rayon::in_place_scope(|scope| {
            scope.spawn(|_| processed = Some(process(&batch)));
            next = read();
            if let Some(last) = last.take() {
                taken = take(last);
            }
        });
        taken?;
        last = processed;
        batch = match next {
            Ok(batch) => batch,
            Err(error) => {
                if let Some(last) = last {
                    take(last)?;
                }
                return Err(error);
            }
        };
    }
    match last {
        Some(last) => take(last),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_processed_and_taken_in_order_until_an_empty_one() {
        let mut numbers = 1..=10_u32;
        let mut sums = Vec::new();
        let read = || Ok::<_, String>(numbers.by_ref().take(3).collect::<Vec<_>>());
        let process = |batch: &[u32]| batch.iter().sum::<u32>();
        read_ahead(read, process, |sum| {
            sums.push(sum);
            Ok(())
        })
        .unwrap();
        assert_eq!(sums, [6, 15, 24, 10]);
    }

    #[test]
    fn a_batch_read_is_taken_before_the_next_reads_error_is_returned() {
        let mut reads = 0;
        let read = || {
            reads += 1;
            if reads == 1 { Ok(vec![1_u32, 2]) } else { Err(format!("read {reads} failed")) }
        };
        let mut taken = Vec::new();
        let take = |len| {
            taken.push(len);
            Ok(())
        };
        let error = read_ahead(read, |batch: &[u32]| batch.len(), take).unwrap_err();
        assert_eq!((taken, error.as_str()), (vec![2], "read 2 failed"));
    }

    #[test]
    fn an_error_taking_a_batch_ends_the_reading() {
        let mut reads = 0;
        let read = || {
            reads += 1;
            Ok::<_, String>(vec![reads; 2])
        };
        let error = read_ahead(read, |batch: &[u32]| batch[0], |first| Err(format!("batch {first} refused")));
        assert_eq!(error.unwrap_err(), "batch 1 refused");
    }
}
