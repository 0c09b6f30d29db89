//! What the backfill targets share about a page: what each item came to, the page's counts
//! (every listed item once as a product or a variation, as active or inactive, and as created,
//! updated, unchanged or failed with its reason), and how the intent recorded by an
//! interrupted attempt of the page makes its writes count as what they were.

use ponte_connectors::bling::{resources::ProdutoResumo, transformers::ProductState};

use super::store::{Failure, Intent, Meant, PageResult};

/// Items in a page of a Bling list.
pub(super) const PAGE_SIZE: usize = ponte_connectors::bling::PAGE_SIZE as usize;
/// Calls in flight to the mapping service (translations, link look-ups, links) per page.
pub(super) const MAPPING_CONCURRENCY: usize = 32;

/// What one item of a page came to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    Created,
    Updated,
    Unchanged,
    Failed(String),
}

impl From<Meant> for Outcome {
    fn from(m: Meant) -> Self {
        match m {
            Meant::Created => Self::Created,
            Meant::Updated => Self::Updated,
        }
    }
}

/// What a step of a target did: the last page it read, what it added, and whether that page
/// was the last.
pub(super) struct Done {
    pub through: u32,
    pub result: PageResult,
    pub last: bool,
}

/// An item's translation, or `None` with its outcome pushed: gone from Bling (not counted) or
/// failed with its reason.
pub(super) fn usable<T>(translated: Option<Result<T, String>>, outcomes: &mut Vec<Option<Outcome>>) -> Option<T> {
    match translated {
        None => {
            outcomes.push(None);
            None
        }
        Some(Err(why)) => {
            outcomes.push(Some(Outcome::Failed(why)));
            None
        }
        Some(Ok(t)) => Some(t),
    }
}

/// A write the interrupted attempt of a page made counts as that write: an item it meant to
/// write that now looks unchanged (or updated) was written by it.
pub(super) fn count_interrupted(
    ids: impl IntoIterator<Item = String>,
    outcomes: &mut [Option<Outcome>],
    intent: &Intent,
) {
    for (id, outcome) in ids.into_iter().zip(outcomes.iter_mut()) {
        if let (Some(o @ (Outcome::Unchanged | Outcome::Updated)), Some(meant)) = (outcome.as_mut(), intent.get(&id)) {
            *o = (*meant).into();
        }
    }
}

/// A page's counts (`None`: gone from Bling since it was listed, not counted).
pub(super) fn tally(items: &[ProdutoResumo], outcomes: Vec<Option<Outcome>>) -> PageResult {
    let mut result = PageResult::default();
    for (item, outcome) in items.iter().zip(outcomes) {
        let Some(outcome) = outcome else { continue };
        let c = &mut result.counts;
        if item.id_produto_pai.is_some() {
            c.variations += 1;
        } else {
            c.products += 1;
        }
        if item.state() == Some(ProductState::Active) {
            c.active += 1;
        } else {
            c.inactive += 1;
        }
        record(&mut result, &item.id.to_string(), outcome);
    }
    result
}

/// Counts one item's outcome (not whether it is a product or active).
pub(super) fn record(result: &mut PageResult, source_id: &str, outcome: Outcome) {
    let c = &mut result.counts;
    match outcome {
        Outcome::Created => c.created += 1,
        Outcome::Updated => c.updated += 1,
        Outcome::Unchanged => c.unchanged += 1,
        Outcome::Failed(reason) => {
            c.failed += 1;
            result.failures.push(Failure { source_id: source_id.to_owned(), reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_listed_item_counts_once_and_interrupted_writes_count_as_meant() {
        let items: Vec<ProdutoResumo> = serde_json::from_value(json!([
            {"id": 1, "nome": "A", "situacao": "A"},
            {"id": 2, "idProdutoPai": 1, "nome": "A P", "situacao": "A"},
            {"id": 3, "nome": "B", "situacao": "I"},
            {"id": 4, "nome": "", "situacao": "A"},
            {"id": 5, "nome": "gone", "situacao": "A"}]))
        .unwrap();
        let mut outcomes = vec![
            Some(Outcome::Unchanged),
            Some(Outcome::Updated),
            Some(Outcome::Unchanged),
            Some(Outcome::Failed("NAME".into())),
            None,
        ];
        let intent =
            Intent::from([("1".into(), Meant::Created), ("2".into(), Meant::Created), ("4".into(), Meant::Updated)]);
        count_interrupted(items.iter().map(|i| i.id.to_string()), &mut outcomes, &intent);
        assert_eq!(outcomes[..2], [Some(Outcome::Created), Some(Outcome::Created)]);
        assert_eq!(outcomes[3], Some(Outcome::Failed("NAME".into())), "a failure stays a failure");
        let r = tally(&items, outcomes);
        let c = r.counts;
        assert_eq!([c.products, c.variations, c.active, c.inactive], [3, 1, 3, 1]);
        assert_eq!([c.created, c.updated, c.unchanged, c.failed], [2, 0, 1, 1]);
        assert_eq!(r.failures, [Failure { source_id: "4".into(), reason: "NAME".into() }]);
    }
}
